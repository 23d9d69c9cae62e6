"""On-demand prices, USD per instance-hour, Linux, us-east-1, as dated below. No pricing
API is called: an estimate is only as current as this table.

Source: AWS's public price pages (listed in SOURCES), values as they stood around
PRICES_DATE, entered by hand: this environment cannot reach those pages, so they were not
re-checked when committed. The ml.g5.xlarge rate agrees with a third-party snapshot of
October 2025 (zircon.tech: "about $1.41/hour" in us-east-1). Check the pages before
relying on a figure; update PRICES_DATE with the table. Other regions and Spot prices (which
move hourly) are not estimated.
"""

from __future__ import annotations

PRICES_DATE = "2025-10-01"
SOURCES = (
    "https://aws.amazon.com/ec2/pricing/on-demand/",
    "https://aws.amazon.com/sagemaker/pricing/",
)

# EC2 On-Demand, Linux, shared tenancy.
EC2: dict[str, dict[str, float]] = {
    "us-east-1": {
        "g4dn.xlarge": 0.526,
        "g4dn.2xlarge": 0.752,
        "g4dn.4xlarge": 1.204,
        "g4dn.12xlarge": 3.912,
        "g5.xlarge": 1.006,
        "g5.2xlarge": 1.212,
        "g5.4xlarge": 1.624,
        "g5.8xlarge": 2.448,
        "g5.12xlarge": 5.672,
        "g5.48xlarge": 16.288,
        "g6.xlarge": 0.8048,
        "g6.2xlarge": 0.9776,
        "g6.4xlarge": 1.3232,
        "g6.12xlarge": 4.6016,
        "g6e.xlarge": 1.861,
        "inf2.xlarge": 0.7582,
        "m5.xlarge": 0.192,
        "c5.xlarge": 0.17,
    },
}

# SageMaker AI real-time inference (Batch Transform bills the same instance rates).
SAGEMAKER: dict[str, dict[str, float]] = {
    "us-east-1": {
        "ml.g4dn.xlarge": 0.736,
        "ml.g4dn.2xlarge": 0.94,
        "ml.g5.xlarge": 1.408,
        "ml.g5.2xlarge": 1.515,
        "ml.g5.4xlarge": 2.03,
        "ml.g5.8xlarge": 3.06,
        "ml.g5.12xlarge": 7.09,
    },
}

# SageMaker Serverless Inference: USD per second of compute per GB of configured memory.
SERVERLESS_PER_GB_SECOND: dict[str, float] = {"us-east-1": 0.00002}
