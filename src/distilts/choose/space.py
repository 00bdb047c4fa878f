"""What a search may choose, per target: student family and size, lookback, backend and precision.

Each family's space is a table of option -> choices, kept only for options the registered student
really has (so a student's constructor, not this file, is the authority). Microcontroller targets get
the families whose operators TFLite Micro runs in full int8, with ReLU where a family has an
`activation` option (GELU has no int8 kernel there); CPU targets get every family, and the backends
that run on the target's architecture in fp32 and int8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from distilts.errors import DistiltsError
from distilts.students import STUDENTS
from distilts.targets import Target

# option -> choices, per family (options a student lacks are dropped; see `family_space`)
FAMILIES: dict[str, dict[str, tuple[Any, ...]]] = {
    "dlinear": {"individual": (False, True)},
    "mlp": {"d_model": (32, 64, 128, 256, 512), "dropout": (0.0, 0.1)},
    "itransformer": {"d_model": (32, 64, 128, 256), "e_layers": (1, 2), "d_ff": (64, 128, 256, 512)},
    "tsmixer": {"n_block": (1, 2, 4), "ff_dim": (16, 32, 64, 128), "dropout": (0.1, 0.5, 0.9)},
    # temporal_layer_norm=True: the official graph (linear residual + constant), docs/design.md
    "tide": {
        "hidden_size": (64, 128, 256),
        "num_layers": (1, 2),
        "decoder_output_dim": (4, 8, 16),
        "temporal_layer_norm": (False, True),
    },
    "nhits": {"mlp_units": ((64, 64), (128, 128), (256, 256), (512, 512)), "n_freq_downsample": ((4, 2, 1), (8, 4, 1))},
    "nbeats": {"mlp_units": ((64, 64), (128, 128), (256, 256)), "n_blocks": ((3,), (6,))},
    "patchtst": {"d_model": (16, 32, 64), "e_layers": (1, 2, 3), "n_heads": (4,), "d_ff": (64, 128)},
}
# full-int8 operators in TFLite Micro (with activation=relu where a student has that option: no GELU kernel there)
MCU_FAMILIES = ("dlinear", "mlp", "tsmixer", "nhits", "nbeats", "itransformer", "patchtst")
LOOKBACKS = (96, 192, 336, 512, 720)
LEARNING_RATES = (3e-4, 1e-3, 3e-3)
CPU_BACKENDS = {"aarch64": ("tflite", "onnx"), "x86_64": ("onnx", "openvino", "tflite")}


@dataclass(frozen=True)
class Candidate:
    """One point of the space: a student and how it is trained and compiled."""

    student: str
    kwargs: dict[str, Any]
    lookback: int
    backend: str
    precision: str
    lr: float

    def label(self) -> str:
        opts = " ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.student}({opts}) L={self.lookback} {self.backend}-{self.precision} lr={self.lr:g}"


@dataclass
class Space:
    target: Target
    families: dict[str, dict[str, tuple[Any, ...]]]
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)  # family -> options set for the target
    lookbacks: tuple[int, ...] = ()
    backends: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "families": {f: {k: list(v) for k, v in opts.items()} for f, opts in self.families.items()},
            "fixed": self.fixed,
            "lookbacks": list(self.lookbacks),
            "backends": list(self.backends),
            "precisions": list(self.precisions),
            "learning_rates": list(LEARNING_RATES),
        }

    def sample(self, trial: Any) -> Candidate:
        """Draw a candidate through an Optuna trial (conditional parameters per family)."""
        family = trial.suggest_categorical("student", list(self.families))
        kwargs = {k: _suggest(trial, f"{family}.{k}", v) for k, v in self.families[family].items()}
        kwargs.update(self.fixed.get(family, {}))
        return Candidate(
            student=family,
            kwargs=kwargs,
            lookback=int(trial.suggest_categorical("lookback", list(self.lookbacks))),
            backend=trial.suggest_categorical("backend", list(self.backends)),
            precision=trial.suggest_categorical("precision", list(self.precisions)),
            lr=float(trial.suggest_categorical("lr", list(LEARNING_RATES))),
        )


def _suggest(trial: Any, name: str, choices: tuple[Any, ...]) -> Any:
    """A categorical draw; tuple choices (Optuna takes only scalars) go through their text, e.g. "128,128"."""
    if not any(isinstance(c, tuple) for c in choices):
        return trial.suggest_categorical(name, list(choices))
    by_text = {",".join(map(str, c)): c for c in choices}
    return list(by_text[trial.suggest_categorical(name, list(by_text))])


def family_space(name: str) -> dict[str, tuple[Any, ...]]:
    """The searched options of registered student `name` that its constructor really has."""
    from distilts.students.registry import student_options

    options = student_options(name)
    return {k: v for k, v in FAMILIES.get(name, {}).items() if k in options}


def build_space(
    target: Target, lookback_max: int, students: tuple[str, ...] = (), lookbacks: tuple[int, ...] | None = None
) -> Space:
    """The space for `target`: families (all the target can run, or `students`), lookbacks up to
    `lookback_max` (or exactly `lookbacks`), backends and precisions."""
    from distilts.students.registry import student_options

    mcu = target.arch is None
    allowed = [n for n in STUDENTS if n in FAMILIES and (not mcu or n in MCU_FAMILIES)]
    if students:
        unknown = [s for s in students if s not in STUDENTS]
        if unknown:
            raise DistiltsError(f"Unknown student(s) {unknown}; the students are {', '.join(STUDENTS)}.")
        refused = [s for s in students if s not in allowed]
        if refused:
            why = "its operators have no full-int8 TFLite Micro kernels" if mcu else "it has no search space"
            raise DistiltsError(
                f"--student {', '.join(refused)} cannot be searched for {target.name} ({why}); "
                f"searchable here: {', '.join(allowed)}."
            )
        allowed = list(students)
    families = {n: family_space(n) for n in allowed}
    fixed = {n: {"activation": "relu"} for n in allowed if mcu and "activation" in student_options(n)}
    lbs = tuple(lookbacks) if lookbacks else tuple(sorted({v for v in LOOKBACKS if v <= lookback_max} | {lookback_max}))
    backends: tuple[str, ...]
    precisions: tuple[str, ...]
    if mcu:
        backends, precisions = (target.format,), ("int8",)
    else:
        backends = CPU_BACKENDS.get(target.arch or "", (target.format,))
        precisions = ("fp32", "int8")
    return Space(target, families, fixed, lbs, backends, precisions)
