"""Cost per hour of the instance types a deployment uses, from the dated table in
deploy/prices.py (no pricing API is reachable, nor called)."""

from __future__ import annotations

from typing import Any

from . import prices
from .errors import DeployError

HOURS_PER_MONTH = 730


def service_of(instance_type: str) -> str:
    return "sagemaker" if instance_type.startswith("ml.") else "ec2"


def price(region: str, instance_type: str) -> float | None:
    table = prices.SAGEMAKER if service_of(instance_type) == "sagemaker" else prices.EC2
    return table.get(region, {}).get(instance_type)


def hourly_cost(region: str, fleet: list[tuple[str, int]]) -> float | None:
    """USD per hour of `count` instances of each type; None when any type is not in the table."""
    total = 0.0
    for instance_type, count in fleet:
        each = price(region, instance_type)
        if each is None:
            return None
        total += each * count
    return round(total, 4)


def estimate(
    region: str, instance_types: list[str], count: int = 1, serverless_memory_mb: int | None = None
) -> dict[str, Any]:
    if count < 1:
        raise DeployError("--count must be at least 1")
    rows = []
    for instance_type in instance_types:
        each = price(region, instance_type)
        row: dict[str, Any] = {
            "instance_type": instance_type,
            "service": service_of(instance_type),
            "count": count,
        }
        if each is None:
            row["note"] = f"not in the price table for {region}"
        else:
            row["usd_per_hour"] = round(each * count, 4)
            row["usd_per_month"] = round(each * count * HOURS_PER_MONTH, 2)
        rows.append(row)
    if serverless_memory_mb:
        rate = prices.SERVERLESS_PER_GB_SECOND.get(region)
        row = {"instance_type": f"serverless {serverless_memory_mb} MB", "service": "sagemaker", "count": 1}
        if rate is None:
            row["note"] = f"not in the price table for {region}"
        else:
            row["usd_per_busy_hour"] = round(rate * serverless_memory_mb / 1024 * 3600, 4)
            row["note"] = "billed per second of inference only; idle time is free"
        rows.append(row)
    return {
        "region": region,
        "rows": rows,
        "prices_as_of": prices.PRICES_DATE,
        "sources": list(prices.SOURCES),
        "note": "on-demand list prices; spot, savings plans and data transfer are not included",
    }
