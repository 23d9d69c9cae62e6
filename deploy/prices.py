"""On-demand prices, USD per instance-hour, Linux, as dated below. No pricing API is called:
the estimate is only as current as this table; check the sources before relying on it.

Compiled from AWS's public price pages (EC2 On-Demand pricing, Amazon SageMaker AI pricing:
real-time inference) as listed on the date below; cross-checked against a third-party
snapshot of October 2025 (zircon.tech: ml.g5.xlarge about $1.41/h in us-east-1). Regions
other than those listed are not estimated. Spot prices move hourly and are not estimated.
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
        "ml.m5.xlarge": 0.23,
        "ml.c5.xlarge": 0.204,
    },
}

# SageMaker Serverless Inference: USD per second of compute per GB of configured memory.
SERVERLESS_PER_GB_SECOND: dict[str, float] = {"us-east-1": 0.00002}
