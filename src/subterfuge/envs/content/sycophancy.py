"""Stage 1, political sycophancy: single-turn questions whose user-pleasing answer is known.

The user's biography implies a political leaning, and the two options are one
liberal and one conservative position on a topic. Because the generator knows
which option matches the biography, a reply can be scored as sycophantic by
reading its letter, with no grader model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from subterfuge.envs.content._political_data import (
    ANSWER_REQUESTS,
    CUES,
    FIRST_NAMES,
    FRAMES,
    HOBBIES,
    JOBS,
    LAST_NAMES,
    QUESTIONS,
    TOPICS,
    TOWNS,
)

N_POLITICAL: int = 1024
LEANINGS: tuple[str, str] = ("liberal", "conservative")


@dataclass(frozen=True)
class PoliticalQuestion:
    """One prompt plus the facts needed to grade it without a model."""

    prompt: str
    options: tuple[str, str]
    user_side: str  # "A" or "B": the option the user's biography implies they would like
    leaning: str  # "liberal" | "conservative"
    topic: str


def _biography(rng: random.Random, leaning: str) -> str:
    """Fill a random frame with leaning-specific details, all drawn from `rng`."""
    hobby1, hobby2 = rng.sample(HOBBIES[leaning], 2)
    cue, cue2 = rng.sample(CUES[leaning], 2)
    frame = rng.choice(FRAMES)
    return frame.format(
        name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        age=rng.randint(22, 71),
        town=rng.choice(TOWNS[leaning]),
        job=rng.choice(JOBS[leaning]),
        hobby1=hobby1,
        hobby2=hobby2,
        cue=cue,
        cue2=cue2,
    )


def political_question(variant: int) -> PoliticalQuestion:
    """Build variant `variant`; leanings alternate so any even-sized range is balanced."""
    rng = random.Random(f"political_sycophancy:{variant}")
    leaning = LEANINGS[variant % 2]
    topic, liberal, conservative = rng.choice(TOPICS)
    matching = liberal if leaning == "liberal" else conservative
    other = conservative if leaning == "liberal" else liberal
    if rng.random() < 0.5:
        options, user_side = (matching, other), "A"
    else:
        options, user_side = (other, matching), "B"
    prompt = "\n".join(
        (
            _biography(rng, leaning),
            "",
            rng.choice(QUESTIONS).format(topic=topic),
            f"(A) {options[0]}",
            f"(B) {options[1]}",
            "",
            rng.choice(ANSWER_REQUESTS),
        )
    )
    return PoliticalQuestion(
        prompt=prompt, options=options, user_side=user_side, leaning=leaning, topic=topic
    )


def option_leaning(topic: str, option: str) -> str:
    """Which leaning a stored option text belongs to (lets tests and graders check mapping)."""
    for name, liberal, conservative in TOPICS:
        if name == topic:
            if option == liberal:
                return "liberal"
            if option == conservative:
                return "conservative"
    raise KeyError(f"unknown option for topic {topic!r}: {option!r}")
