"""The device budget of a search: latency per forecast, flash and RAM, each optional, with units."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from distilts.errors import DistiltsError

TIME_UNITS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}  # -> milliseconds
SIZE_UNITS = {"b": 1 / 1024, "kb": 1000 / 1024, "kib": 1.0, "k": 1.0, "mb": 1e6 / 1024, "mib": 1024.0, "m": 1024.0}
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([a-zµ]*)\s*$", re.IGNORECASE)


class BudgetError(DistiltsError):
    """A budget that cannot be used: negative, an unknown unit, or a resource the target does not have."""


def parse_quantity(text: str | float | int, kind: str, flag: str) -> float:
    """`"0.5"`, `"500us"`, `"256KiB"`, `"1MiB"` -> milliseconds (kind "time") or KiB (kind "size");
    a bare number is in the flag's own unit (ms, KiB)."""
    units = TIME_UNITS if kind == "time" else SIZE_UNITS
    if isinstance(text, (int, float)):
        value, unit = float(text), ""
    else:
        if str(text).strip().startswith("-"):
            raise BudgetError(f"{flag} {text}: a budget must be positive.")
        m = _QUANTITY.match(str(text))
        if not m:
            raise BudgetError(f"{flag} {text!r} is not a number with an optional unit (e.g. {_example(kind)}).")
        value, unit = float(m.group(1)), m.group(2).lower()
    if unit and unit not in units:
        raise BudgetError(
            f"{flag} {text!r}: unknown unit {unit!r}; use one of {', '.join(sorted(units))} (e.g. {_example(kind)})."
        )
    if value <= 0:
        raise BudgetError(f"{flag} {text}: a budget must be positive.")
    return value * (units[unit] if unit else 1.0)


def _example(kind: str) -> str:
    return "0.5, 500us, 2ms" if kind == "time" else "256, 256KiB, 1MiB"


@dataclass(frozen=True)
class Budget:
    """Upper limits a trial's artifact must meet (None: no limit): latency per forecast (ms, batch 1),
    flash (KiB: the model's bytes) and RAM (KiB: the tensor arena)."""

    latency_ms: float | None = None
    flash_kib: float | None = None
    ram_kib: float | None = None

    @classmethod
    def parse(cls, latency: Any = None, flash: Any = None, ram: Any = None) -> Budget:
        return cls(
            None if latency is None else parse_quantity(latency, "time", "--max-latency-ms"),
            None if flash is None else parse_quantity(flash, "size", "--max-flash-kib"),
            None if ram is None else parse_quantity(ram, "size", "--max-ram-kib"),
        )

    def check_target(self, target: Any) -> None:
        """A BudgetError for a limit the target has no figure for (flash/RAM off a microcontroller)."""
        if target.sram_kib is None and (self.flash_kib is not None or self.ram_kib is not None):
            raise BudgetError(
                f"Target {target.name} has no flash or SRAM limit (it is a {target.arch or 'CPU'} machine): "
                "--max-flash-kib and --max-ram-kib apply to microcontroller targets (cortex-m4f, cortex-m7, "
                "cortex-m55, ethos-u55-128, ethos-u65-256); budget it with --max-latency-ms."
            )
        for limit, have, what in ((self.flash_kib, target.flash_kib, "flash"), (self.ram_kib, target.sram_kib, "SRAM")):
            if limit is not None and have is not None and limit > have:
                raise BudgetError(
                    f"The {what} budget {limit:g} KiB is more than {target.name} has ({have} KiB): lower it."
                )

    def violations(self, figures: dict[str, Any]) -> list[str]:
        """What a trial's figures (`latency_ms`, `flash_kib`, `ram_kib`) exceed, one phrase each."""
        out = []
        for key, unit in (("latency_ms", "ms"), ("flash_kib", "KiB"), ("ram_kib", "KiB")):
            limit, got = getattr(self, key), figures.get(key)
            if limit is not None and got is not None and got > limit:
                out.append(f"{key.split('_')[0]} {got:.4g} {unit} > {limit:g} {unit}")
        return out

    def is_empty(self) -> bool:
        return all(v is None for v in asdict(self).values())

    def describe(self) -> str:
        parts = [
            f"latency <= {self.latency_ms:g} ms" if self.latency_ms is not None else "",
            f"flash <= {self.flash_kib:g} KiB" if self.flash_kib is not None else "",
            f"RAM <= {self.ram_kib:g} KiB" if self.ram_kib is not None else "",
        ]
        return ", ".join(p for p in parts if p) or "no budget"
