"""Student models (normalized `[B, L, D] -> [B, H, D]`) and the student directory format.

Every student exposes `forward(x)`, `represent(x) -> [B, D, d_S]` (the variate-wise features FTA
aligns with the teacher), `forward_with_repr(x) -> (y, h)` and `repr_dim` (= d_S).

`STUDENTS` (name -> "module:class") is the registry; it and this package import no torch, so the
command line reads the names from here. The other names load on first use (PEP 562).
"""

from __future__ import annotations

from distilts.lazy import lazy_names
from distilts.plugins import Registry

STUDENTS: Registry[str] = Registry(
    "student",
    {
        "dlinear": "distilts.students.dlinear:DLinear",
        "itransformer": "distilts.students.itransformer:ITransformer",
        "mlp": "distilts.students.mlp:MLP",
        "tsmixer": "distilts.students.tsmixer:TSMixer",
        "tide": "distilts.students.tide:TiDE",
        "nhits": "distilts.students.nhits:NHiTS",
        "nbeats": "distilts.students.nhits:NBEATS",
        "patchtst": "distilts.students.patchtst:PatchTST",
        "ensemble": "distilts.students.ensemble:Ensemble",
    },
)

_LAZY = {
    "DLinear": "dlinear",
    "ITransformer": "itransformer",
    "MLP": "mlp",
    "TSMixer": "tsmixer",
    "TiDE": "tide",
    "NHiTS": "nhits",
    "NBEATS": "nhits",
    "PatchTST": "patchtst",
    "Ensemble": "ensemble",
    "build_student": "registry",
    "param_count": "registry",
    "student_class": "registry",
    "student_options": "registry",
    "load_student_dir": "io",
    "read_student_config": "io",
    "save_student_dir": "io",
    "dataset_for_student": "data",
}

__all__ = ["STUDENTS", *_LAZY]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
