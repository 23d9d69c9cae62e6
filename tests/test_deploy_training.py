"""`python -m deploy sagemaker train` end to end against moto's server behind the emulator
(tests/aws_emulator.py, extension 13: a training job runs this repository's entrypoint
`train` on an /opt/ml tree filled from moto's S3, uploads /opt/ml/model as model.tar.gz, and
ends Completed, or Failed with the reason the container wrote).

The data are real labelled images (Fashion-MNIST's training split, from Debian's
dataset-fashion-mnist) uploaded to moto's S3; training is real (head mode: seconds). The
trained model is stored in a scratch BentoML home (the project's models linked into it,
read only), then pushed as custom/<NAME>/ in the model artifacts and served by a SageMaker
endpoint as model=NAME. The tests run in file order and share the module's jobs.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from deploy.entrypoint import MANIFEST_NAME, file_digest, verify_artifacts

from . import fashion_mnist
from .aws_emulator import moto_client
from .deploy_support import check_plan, run_deploy, run_deploy_logged, run_deploy_process
from .servers import bentoml_home_beside_the_project

pytestmark = pytest.mark.skipif(
    not fashion_mnist.available(), reason="Debian's dataset-fashion-mnist is not installed"
)
NAME = "fashion-sm"  # the model, its training jobs and its role
ENDPOINT = "fashion-serve"
DATA_BUCKET = "pais-test-training-data"
LABELS = sorted(fashion_mnist.LABELS[:3])
HEAD = [
    "--hyperparameter",
    "mode=head",
    "--hyperparameter",
    "epochs=20",
    "--hyperparameter",
    "min_per_class=10",
]


def upload(s3, folder: Path, prefix: str) -> str:
    for path in sorted(folder.rglob("*.png")):
        s3.put_object(
            Bucket=DATA_BUCKET, Key=f"{prefix}{path.relative_to(folder).as_posix()}", Body=path.read_bytes()
        )
    return f"s3://{DATA_BUCKET}/{prefix}"


@pytest.fixture(scope="module")
def data(moto_endpoint, tmp_path_factory) -> dict[str, str]:
    """The users' data in their own bucket: three classes, and one class alone."""
    s3 = moto_client(moto_endpoint, "s3")
    s3.create_bucket(Bucket=DATA_BUCKET)
    images = fashion_mnist.write_subset(tmp_path_factory.mktemp("fm3"), per_class=15, classes=3)
    one = fashion_mnist.write_subset(tmp_path_factory.mktemp("fm1"), per_class=15, classes=1)
    return {"three": upload(s3, images, "fashion/"), "one": upload(s3, one, "one-class/")}


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A BentoML home with the project's models (linked, read only) and room for more."""
    home = bentoml_home_beside_the_project(tmp_path_factory.mktemp("bentoml-home"))
    return home


@pytest.fixture(scope="module")
def trained(aws_emulator, pushed_release, data, home) -> dict:
    """`sagemaker train` as a user runs it: its own process, storing into `home`."""
    result, log = run_deploy_process(
        aws_emulator.url,
        "sagemaker", "train", "--name", NAME, "--data", data["three"], "--create-role",
        "--instance-type", "ml.g5.xlarge", "--tags", "team=ml", *HEAD,
        env={"BENTOML_HOME": str(home)},
    )  # fmt: skip
    return {**result, "log": log}


def held_out(tmp_path: Path) -> list[tuple[str, bytes]]:
    """Two images of each label that training never saw."""
    folder = fashion_mnist.write_subset(tmp_path / "held-out", per_class=2, classes=3, offset=500)
    return [(path.parent.name, path.read_bytes()) for path in sorted(folder.glob("*/*.png"))]


def sm(moto_endpoint: str):
    return moto_client(moto_endpoint, "sagemaker")


def tags_of(moto_endpoint: str, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm(moto_endpoint).list_tags(ResourceArn=arn)["Tags"]}


def test_dry_run_plans_the_job_and_changes_nothing(aws_emulator, pushed_release, data, moto_endpoint):
    plan = run_deploy(
        aws_emulator.url,
        "sagemaker", "train", "--name", NAME, "--data", data["three"], "--create-role", "--spot",
        "--max-run", "3600", *HEAD, "--dry-run",
    )  # fmt: skip
    operations = check_plan(plan)
    assert ("iam", "CreateRole") in operations and operations[-1] == ("sagemaker", "CreateTrainingJob")
    job = plan["calls"][-1]["params"]
    assert job["TrainingJobName"].startswith(f"{NAME}-train-")
    assert job["AlgorithmSpecification"]["TrainingImage"] == pushed_release["image"]  # by digest
    assert job["HyperParameters"] == {"name": NAME, "mode": "head", "epochs": "20", "min_per_class": "10"}
    (channel,) = job["InputDataConfig"]
    assert channel["ChannelName"] == "training"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == data["three"]
    assert job["CheckpointConfig"]["S3Uri"].endswith(
        f"/training/{NAME}/{job['TrainingJobName']}/checkpoints/"
    )
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert {"Key": "pais:deployment", "Value": NAME} in job["Tags"]
    assert any("store it as fashion-sm in the local BentoML store" in note for note in plan["notes"])
    # nothing was made
    assert sm(moto_endpoint).list_training_jobs(NameContains=NAME)["TrainingJobSummaries"] == []
    roles = moto_client(moto_endpoint, "iam").list_roles()["Roles"]
    assert f"pais-{NAME}-training" not in {role["RoleName"] for role in roles}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--name", NAME, *HEAD, "--hyperparameter", "epochs=many"],
            "hyperparameter epochs='many' is not a valid",
        ),
        (["--name", NAME, "--hyperparameter", "learning_rat=0.1"], "unknown hyperparameters learning_rat"),
        (["--name", NAME, "--hyperparameter", "name=other"], "the model's name is --name"),
        (["--name", "Fashion"], "BentoML model names are lowercase"),
        (["--name", NAME, "--instance-type", "ml.g5.huge"], "not a SageMaker training instance type"),
    ],
)
def test_mistakes_are_refused_before_anything_is_made(aws_emulator, data, moto_endpoint, args, expected):
    error = run_deploy(aws_emulator.url, "sagemaker", "train", "--data", data["three"], *args, status=1)
    assert expected in error
    assert sm(moto_endpoint).list_training_jobs(NameContains=NAME)["TrainingJobSummaries"] == []


def test_empty_data_is_refused_before_a_job_starts(aws_emulator, data):
    error = run_deploy(
        aws_emulator.url,
        "sagemaker",
        "train",
        "--name",
        NAME,
        "--data",
        f"s3://{DATA_BUCKET}/nothing/",
        status=1,
    )
    assert f"--data s3://{DATA_BUCKET}/nothing/: no objects under it" in error


def test_train_waits_for_the_job_and_stores_the_trained_model(trained, home, tmp_path):
    from models.classification import ImageClassifier

    assert trained["status"] == "Completed"
    assert trained["labels"] == LABELS and trained["validation_accuracy"] > 1 / 3
    # waited: the status changes and the container's own log lines, as they came
    assert "InProgress (Training)" in trained["log"] and "Completed" in trained["log"]
    assert "  | epoch 20/20:" in trained["log"] and "pais entrypoint: wrote the classifier" in trained["log"]

    name, version = trained["stored"].split(":")
    assert name == NAME and Path(trained["store"]) == home
    stored = home / "models" / NAME / version
    # what the server's ModelShelf lists: a classification model trained by models.finetune
    card = yaml.safe_load((stored / "model.yaml").read_text())
    assert card["labels"] == {"task": "classification", "trained_by": "models.finetune"}
    assert card["metadata"]["labels"] == LABELS and card["metadata"]["mode"] == "head"

    classifier = ImageClassifier.load(str(stored), device="cpu")
    assert sorted(classifier.labels) == LABELS
    samples = held_out(tmp_path)
    top = [result.predictions[0].label for result in classifier.predict([d for _, d in samples], top_k=1)]
    right = sum(label == predicted for (label, _), predicted in zip(samples, top, strict=True))
    assert right >= 4, f"{right} of {len(samples)} held-out images right"  # chance: 2


def test_the_job_is_tagged_and_runs_the_pushed_image_with_its_own_role(
    trained, moto_endpoint, pushed_release, data
):
    job = sm(moto_endpoint).describe_training_job(TrainingJobName=trained["job"])
    assert job["AlgorithmSpecification"]["TrainingImage"] == pushed_release["image"]
    assert job["HyperParameters"]["epochs"] == "20"  # strings, as SageMaker passes them on
    assert job["RoleArn"].endswith(f"role/pais-{NAME}-training")
    tags = tags_of(moto_endpoint, job["TrainingJobArn"])
    assert tags["pais:deployment"] == NAME and tags["pais:managed-by"] == "python -m deploy"
    assert tags["team"] == "ml"

    iam = moto_client(moto_endpoint, "iam")
    role = iam.get_role(RoleName=f"pais-{NAME}-training")["Role"]
    assert {t["Key"]: t["Value"] for t in role["Tags"]}["pais:deployment"] == NAME
    statements = {
        s["Sid"]: s
        for s in iam.get_role_policy(RoleName=role["RoleName"], PolicyName="pais")["PolicyDocument"][
            "Statement"
        ]
    }
    bucket = trained["output"].removeprefix("s3://").split("/")[0]
    assert statements["ReadArtifacts"]["Resource"] == sorted(
        [f"arn:aws:s3:::{DATA_BUCKET}/fashion/*", f"arn:aws:s3:::{bucket}/training/{NAME}/*"]
    )
    assert statements["WriteOutputs"]["Resource"] == [f"arn:aws:s3:::{bucket}/training/{NAME}/*"]
    assert statements["ListInputs"]["Resource"] == sorted(
        [f"arn:aws:s3:::{DATA_BUCKET}", f"arn:aws:s3:::{bucket}"]
    )

    # the checkpoints SageMaker keeps for a restart, and the model where SageMaker puts it
    s3 = moto_client(moto_endpoint, "s3")
    prefix = trained["checkpoints"].removeprefix(f"s3://{bucket}/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    assert f"{prefix}checkpoint.pt" in keys
    assert trained["model_data"] == f"{trained['output']}{trained['job']}/output/model.tar.gz"


def test_logs_and_waiting_again_for_the_finished_job(trained, aws_emulator):
    shown = run_deploy(aws_emulator.url, "sagemaker", "logs", NAME, "--job", trained["job"], "--since", "1h")
    assert shown["log_group"] == "/aws/sagemaker/TrainingJobs"
    assert any("pais entrypoint: training on" in line for line in shown["lines"])
    again = run_deploy(
        aws_emulator.url, "sagemaker", "train", "--name", NAME, "--job", trained["job"], "--no-store"
    )
    assert again["status"] == "Completed" and again["labels"] == LABELS and "stored" not in again
    error = run_deploy(
        aws_emulator.url, "sagemaker", "train", "--name", "other", "--job", trained["job"], status=1
    )
    assert "not a training job of other" in error


def test_a_failing_job_exits_non_zero_with_the_containers_reason(trained, aws_emulator, data):
    error, log = run_deploy_logged(
        aws_emulator.url, "sagemaker", "train", "--name", NAME, "--data", data["one"], *HEAD, status=1
    )
    assert "failed: AlgorithmError: only one class ('t-shirt-top')" in error
    assert "a classifier needs at least two classes with images" in error
    assert f"python -m deploy sagemaker logs {NAME} --job {NAME}-train-" in error
    assert "  | pais entrypoint: only one class" in log  # the job's log, as it came


@pytest.fixture(scope="module")
def custom_release(trained, aws_emulator, home) -> dict:
    """`push` of the project's classifier and the trained model (as custom/<NAME>/)."""
    return run_deploy(
        aws_emulator.url,
        "push", "--skip-image", "--tag", "trained-1", "--model-store", str(home),
        "--models", "pais-classification", "--custom-model", NAME,
    )  # fmt: skip


def test_push_packs_the_custom_model_with_its_digests(
    trained, custom_release, aws_emulator, moto_endpoint, home, tmp_path
):
    version = trained["stored"].split(":")[1]
    assert custom_release["models"][f"custom/{NAME}"] == version
    bucket, key = custom_release["model_data"].removeprefix("s3://").split("/", 1)
    archive = moto_client(moto_endpoint, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "model", filter="data")
    stored = home / "models" / NAME / version
    manifest = (tmp_path / "model" / MANIFEST_NAME).read_text()
    for file in ("pais-model.json", "weights.safetensors"):
        assert f"custom/{NAME}/{file}" in names
        assert f"{file_digest(stored / file)}  custom/{NAME}/{file}\n" in manifest
    assert "classification/pais-model.json" in names
    # what the container checks before it serves: every file, the custom model's included
    assert verify_artifacts(tmp_path / "model", custom_release["manifest_sha256"]) == len(names) - 1

    error = run_deploy(
        aws_emulator.url, "push", "--skip-image", "--model-store", str(home),
        "--custom-model", "pais-detection", status=1,
    )  # fmt: skip
    assert "--custom-model pais-detection:" in error and "not a custom classifier" in error


def test_an_endpoint_of_that_release_serves_the_trained_model_by_name(
    custom_release, aws_emulator, pushed_release, tmp_path
):
    deployed = run_deploy(
        aws_emulator.url,
        "sagemaker", "deploy", ENDPOINT, "--create-role", "--image", "release-1",
        "--model-data", custom_release["model_data"],
    )  # fmt: skip
    assert deployed["status"] == "InService"
    try:
        runtime = moto_client(aws_emulator.url, "sagemaker-runtime")
        samples = held_out(tmp_path)
        for _, image in samples[::2]:
            answer = runtime.invoke_endpoint(
                EndpointName=ENDPOINT,
                Body=image,
                ContentType="image/png",
                CustomAttributes=f"task=classify;model={NAME}",
            )
            (result,) = json.loads(answer["Body"].read())
            assert result["model"] == NAME
            assert {p["label"] for p in result["predictions"]} <= set(LABELS)
        # without model=, the endpoint's own classifier answers
        plain = runtime.invoke_endpoint(
            EndpointName=ENDPOINT,
            Body=samples[0][1],
            ContentType="image/png",
            CustomAttributes="task=classify",
        )
        assert json.loads(plain["Body"].read())[0]["model"] == "efficientnet-lite0"
    finally:
        run_deploy(aws_emulator.url, "sagemaker", "teardown", ENDPOINT)


def test_status_lists_the_jobs_and_teardown_stops_only_the_tools_own(
    trained, aws_emulator, moto_endpoint, data, pushed_release
):
    long = [
        "--hyperparameter",
        "mode=full",
        "--hyperparameter",
        "epochs=500",
        "--hyperparameter",
        "patience=500",
    ]
    started = run_deploy(
        aws_emulator.url, "sagemaker", "train", "--name", NAME, "--data", data["three"], *long, "--no-wait"
    )
    assert f"--job {started['job']}" in started["note"]
    # a job named like the tool's, made by someone else (untagged)
    foreign = f"{NAME}-train-991231235959999-vvvvv"
    described = sm(moto_endpoint).describe_training_job(TrainingJobName=started["job"])
    sm(aws_emulator.url).create_training_job(
        TrainingJobName=foreign,
        AlgorithmSpecification=described["AlgorithmSpecification"],
        RoleArn=described["RoleArn"],
        HyperParameters={"mode": "full", "epochs": "500", "patience": "500"},
        InputDataConfig=described["InputDataConfig"],
        OutputDataConfig={"S3OutputPath": f"s3://{DATA_BUCKET}/foreign/"},
        ResourceConfig=described["ResourceConfig"],
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    try:
        status = run_deploy(aws_emulator.url, "sagemaker", "status", NAME)
        jobs = {job["job"]: job["status"] for job in status["training_jobs"]}
        assert jobs[trained["job"]] == "Completed" and jobs[started["job"]] == "InProgress"
        assert "Failed" in jobs.values()  # the one-class job

        result = run_deploy(aws_emulator.url, "sagemaker", "teardown", NAME)
        assert result["training"] == {"stopped": [started["job"]], "role_deleted": True}
        (left,) = [item for item in result["left_alone"] if item["name"] == foreign]
        assert left["kind"] == "SageMaker training job" and "--force-adopt" in left["reason"]
        deadline = time.monotonic() + 60
        while (
            sm(aws_emulator.url).describe_training_job(TrainingJobName=started["job"])["TrainingJobStatus"]
            != "Stopped"
            and time.monotonic() < deadline
        ):
            time.sleep(0.5)
        ended = sm(aws_emulator.url).describe_training_job(TrainingJobName=started["job"])
        assert ended["TrainingJobStatus"] == "Stopped"
        assert sm(aws_emulator.url).describe_training_job(TrainingJobName=foreign)["TrainingJobStatus"] == (
            "InProgress"
        )
        roles = moto_client(moto_endpoint, "iam").list_roles()["Roles"]
        assert f"pais-{NAME}-training" not in {role["RoleName"] for role in roles}
    finally:
        sm(aws_emulator.url).stop_training_job(TrainingJobName=foreign)
