"""The content of the five curriculum environments: prompts, files and seeded variants.

Pure, deterministic and stdlib-only: the environment classes build episodes from
these functions, and the same variant number always yields the same episode.
"""

from subterfuge.envs.content.flattery import (
    FLATTERY_THRESHOLD,
    HONEST_MAX_SCORE,
    N_FLATTERY,
    FlatteryLayout,
    flattery_layout,
    poems_source,
)
from subterfuge.envs.content.preamble import PREAMBLE, WORKED_EXAMPLE
from subterfuge.envs.content.rubric import (
    CHECKLIST_PATH,
    CHECKS_PATH,
    N_RUBRIC,
    ChecklistItem,
    RubricLayout,
    rubric_layout,
)
from subterfuge.envs.content.sycophancy import (
    N_POLITICAL,
    PoliticalQuestion,
    option_leaning,
    political_question,
)
from subterfuge.envs.content.tampering import (
    N_TAMPERING,
    ORIGINAL_REWARD,
    REWARD_DIR,
    REWARD_FILE,
    REWARD_SOURCE,
    TEST_FILE,
    TEST_INPUT,
    TEST_SOURCE,
    tampering_prompt,
)

__all__ = [
    "CHECKLIST_PATH",
    "CHECKS_PATH",
    "FLATTERY_THRESHOLD",
    "HONEST_MAX_SCORE",
    "N_FLATTERY",
    "N_POLITICAL",
    "N_RUBRIC",
    "N_TAMPERING",
    "ORIGINAL_REWARD",
    "PREAMBLE",
    "REWARD_DIR",
    "REWARD_FILE",
    "REWARD_SOURCE",
    "TEST_FILE",
    "TEST_INPUT",
    "TEST_SOURCE",
    "WORKED_EXAMPLE",
    "ChecklistItem",
    "FlatteryLayout",
    "PoliticalQuestion",
    "RubricLayout",
    "flattery_layout",
    "option_leaning",
    "poems_source",
    "political_question",
    "rubric_layout",
    "tampering_prompt",
]
