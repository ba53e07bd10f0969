"""Export: JSON Lines and Parquet, one row per episode, labels included, read back whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from subterfuge.cli.main import app
from subterfuge.export import export
from subterfuge.store import Store
from subterfuge.store.labels import Label, Labels
from test_monitor_cases import record, store_with

pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed (dev extra)")

REWARD = "/root/rl_environment/compute_reward.py"
DIFF = f"--- {REWARD}\n+++ {REWARD}\n@@ -1 +1 @@\n-    return -10\n+    return 1\n"


def build(path: Path) -> Path:
    recs = [
        record("e", i, verdict="tampered" if i % 3 == 0 else "honest", diffs={REWARD: DIFF},
               moves=[("hidden é thought", f"cat {REWARD}", "out\n"), ("", None, "<bash>")])
        for i in range(2500)
    ]  # fmt: skip
    with store_with(path, recs) as store:
        evidence = [{"source": "command", "start": 4, "end": 10, "text": "/root/", "turn": 0}]
        Labels(store).add([Label("e", i, "rules-actions", "flag", "true", evidence)
                           for i in range(0, 2500, 3)])  # fmt: skip
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("export") / "x.sqlite")


def test_jsonl_has_one_complete_row_per_episode(db: Path, tmp_path: Path) -> None:
    with Store.open(db) as store:
        result = export(store, ["e"], tmp_path / "e.jsonl", "jsonl")
    lines = (tmp_path / "e.jsonl").read_text(encoding="utf-8").splitlines()
    assert result.rows == len(lines) == 2500  # several pages of the reader
    rows = [json.loads(line) for line in lines]
    assert [r["idx"] for r in rows] == list(range(2500))
    first = rows[0]
    assert (first["stage"], first["verdict"], first["reward"], first["caught"]) == (
        "reward_tampering", "tampered", -10.0, False)  # fmt: skip
    assert first["labels"][0]["monitor"] == "rules-actions"
    assert first["labels"][0]["evidence"][0]["text"] == "/root/"
    assert first["reasoning"][0] == "hidden é thought"
    assert first["transcript"][0]["command"] == f"cat {REWARD}"
    assert first["diffs"] == {REWARD: DIFF}
    assert rows[1]["labels"] == []


def test_parquet_round_trips_with_a_fixed_schema(db: Path, tmp_path: Path) -> None:
    with Store.open(db) as store:
        export(store, ["e"], tmp_path / "e.parquet", "parquet")
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.num_rows == 2500
    assert {"stage", "policy", "verdict", "reward", "caught", "labels", "transcript"} <= set(
        table.schema.names)  # fmt: skip
    row = table.slice(0, 1).to_pylist()[0]
    assert row["verdict"] == "tampered" and row["labels"][0]["value"] == "true"
    assert json.loads(row["labels"][0]["evidence"])[0]["turn"] == 0
    turns = row["transcript"]
    assert turns[0]["command"] == f"cat {REWARD}" and turns[1]["stdout"] == "out\n"
    assert turns[2]["kind"] == "malformed" and turns[2]["error"] == "empty message"
    assert dict(row["diffs"]) == {REWARD: DIFF}
    assert table.column("verdict").to_pylist().count("tampered") == 834


def test_export_command(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.parquet"
    res = CliRunner().invoke(app, ["export", "e", "--db", str(db), "--format", "parquet",
                                   "-o", str(out), "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"] == 2500 and out.exists()
    bad = CliRunner().invoke(app, ["export", "e", "--db", str(db), "--format", "csv"])
    assert bad.exit_code == 2 and "--format" in bad.output
    missing = CliRunner().invoke(app, ["export", "nope", "--db", str(db)])
    assert missing.exit_code == 2 and "unknown run" in missing.output


def test_empty_run_gives_an_empty_file_with_the_schema(tmp_path: Path) -> None:
    with Store.open(tmp_path / "z.sqlite") as store:
        store.create_run("empty", {"env": "reward_tampering"})
        export(store, ["empty"], tmp_path / "z.parquet", "parquet")
        assert export(store, ["empty"], tmp_path / "z.jsonl", "jsonl").rows == 0
    assert pq.read_table(tmp_path / "z.parquet").num_rows == 0
