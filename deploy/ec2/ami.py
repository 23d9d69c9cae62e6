"""The latest AWS Deep Learning AMI with an NVIDIA driver, Docker and the NVIDIA container
toolkit: found through its public SSM parameter, else by name among Amazon's images."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..aws import Aws, is_not_found
from ..errors import DeployError

# "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04)": the parameter name is the
# AMI name without "Deep Learning" and "AMI", as AWS's DLAMI guide describes.
DLAMI_PARAMETER = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"
DLAMI_NAME = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04) *"


def find_ami(aws: Aws, ami: str | None, parameter: str, name_pattern: str) -> dict[str, Any]:
    """{"image_id", "name", "root_device", "found_by"} of the AMI to launch."""
    if ami:
        return _describe(aws, ami, "--ami")
    try:
        image_id = aws.read("ssm", "GetParameter", Name=parameter)["Parameter"]["Value"]
        return _describe(aws, image_id, f"SSM parameter {parameter}")
    except ClientError as error:
        if not is_not_found(error):
            raise
    images = aws.read(
        "ec2",
        "DescribeImages",
        Owners=["amazon"],
        Filters=[
            {"Name": "name", "Values": [name_pattern]},
            {"Name": "state", "Values": ["available"]},
            {"Name": "architecture", "Values": ["x86_64"]},
        ],
    )["Images"]
    if not images:
        raise DeployError(
            f"no Deep Learning AMI found: SSM parameter {parameter} is missing in {aws.region} and no "
            f"Amazon image is named {name_pattern!r}; pass --ami"
        )
    newest = max(images, key=lambda image: image["CreationDate"])
    return _summary(newest, f"newest Amazon image named {name_pattern!r}")


def _describe(aws: Aws, image_id: str, found_by: str) -> dict[str, Any]:
    images = aws.read("ec2", "DescribeImages", ImageIds=[image_id])["Images"]
    if not images:
        raise DeployError(f"AMI {image_id} ({found_by}) does not exist in {aws.region}")
    return _summary(images[0], found_by)


def _summary(image: dict[str, Any], found_by: str) -> dict[str, Any]:
    return {
        "image_id": image["ImageId"],
        "name": image.get("Name"),
        "root_device": image.get("RootDeviceName", "/dev/sda1"),
        "found_by": found_by,
    }
