"""The pinned, dated price table (prices.json): SageMaker Training on-demand $/instance-hour.

No package ships SageMaker prices and trainops must never need the network beyond its endpoint,
so the figures are a hand-pinned snapshot with a date, checked when loaded (one line each) and
looked up with errors that say how to fix the table or the input.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The table shipped in the repo; its path is what error messages name.
PRICES_JSON = Path(__file__).resolve().parent / "prices.json"
_SHOWN_PATH = "trainops/pricing/prices.json"


class PriceError(ValueError):
    """The table cannot price this run (unknown type, missing region) or is malformed."""


@dataclass(frozen=True)
class PriceTable:
    """One snapshot: its date, the spot assumption and per-region prices."""

    date: dt.date
    currency: str
    source: str
    spot_discount_assumed: float
    regions: dict[str, dict[str, float]]
    quoted: dict[str, frozenset[str]]
    path: str = _SHOWN_PATH

    @property
    def spot_factor(self) -> float:
        """The share of on-demand a spot run is assumed to pay (an estimate, see prices.json)."""
        return 1.0 - self.spot_discount_assumed

    def instance_types(self) -> list[str]:
        return sorted({t for prices in self.regions.values() for t in prices})

    def price(self, instance_type: str, region: str) -> float:
        """On-demand $/instance-hour, or a PriceError that names the fix."""
        if instance_type not in self.instance_types():
            close = difflib.get_close_matches(instance_type, self.instance_types(), n=3, cutoff=0.6)
            hint = f"close: {', '.join(close)}" if close else f"it has {', '.join(self.families())}"
            raise PriceError(
                f"unknown instance type {instance_type!r}: {self.path} has no price for it "
                f"({hint}); pass one of those with --instance-type, or add its $/hour to the table"
            )
        if region not in self.regions:
            raise PriceError(
                f"region {region!r} is not in {self.path} (prices of {self.date}; regions: "
                f'{", ".join(sorted(self.regions))}): add a "{region}" object under "regions" '
                "with its SageMaker Training on-demand $/instance-hour (Price List: "
                "AmazonSageMaker, ML Instance, component Training), or pass --region"
            )
        prices = self.regions[region]
        if instance_type not in prices:
            where = sorted(r for r, p in self.regions.items() if instance_type in p)
            raise PriceError(
                f"{instance_type} has no price for {region} in {self.path} (prices of "
                f"{self.date}; priced in {', '.join(where)}): pick another region or instance "
                f"type, or add its {region} price to the table"
            )
        return prices[instance_type]

    def is_quoted(self, instance_type: str, region: str) -> bool:
        """Copied from a published list (True) or derived by the table's stated rules."""
        return instance_type in self.quoted.get(region, frozenset())

    def families(self) -> list[str]:
        return sorted({t.rsplit(".", 1)[0] + ".*" for t in self.instance_types()})


def load(path: Path = PRICES_JSON) -> PriceTable:
    """Read and check the table: a malformed one fails here with the field to fix."""
    shown = _SHOWN_PATH if path == PRICES_JSON else str(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PriceError(f"{shown}: cannot read the price table ({exc})") from None
    return parse(raw, shown)


def parse(raw: Any, shown: str = _SHOWN_PATH) -> PriceTable:
    """The checks `load` applies, on an already-parsed document (tests build bad ones)."""
    if not isinstance(raw, dict):
        raise PriceError(f"{shown}: expected a JSON object at the top level")
    try:
        date = dt.date.fromisoformat(str(raw.get("date")))
    except ValueError:
        raise PriceError(
            f'{shown}: "date" {raw.get("date")!r} is not YYYY-MM-DD (the snapshot\'s date)'
        ) from None
    if raw.get("currency") != "USD":
        raise PriceError(f'{shown}: "currency" {raw.get("currency")!r}: expected "USD"')
    discount = raw.get("spot_discount_assumed")
    if not _number(discount) or not 0 <= discount < 1:
        raise PriceError(
            f'{shown}: "spot_discount_assumed" {discount!r}: expected a fraction in [0, 1), '
            "e.g. 0.7 for pay 30%"
        )
    regions = raw.get("regions")
    if not isinstance(regions, dict) or not regions:
        raise PriceError(f'{shown}: "regions" must map region -> {{instance type: $/hour}}')
    for region, prices in regions.items():
        if not isinstance(prices, dict) or not prices:
            raise PriceError(f"{shown}: region {region!r} has no prices: remove it or fill it")
        for instance_type, price in prices.items():
            if not instance_type.startswith("ml.") or not _number(price) or price <= 0:
                raise PriceError(
                    f"{shown}: {region} {instance_type}: {price!r}: expected an ml.* type with "
                    "a positive $/instance-hour"
                )
    quoted = {r: frozenset(types) for r, types in (raw.get("quoted") or {}).items()}
    return PriceTable(
        date=date,
        currency="USD",
        source=str(raw.get("source", "")),
        spot_discount_assumed=float(discount),
        regions={r: {t: float(p) for t, p in prices.items()} for r, prices in regions.items()},
        quoted=quoted,
        path=shown,
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
