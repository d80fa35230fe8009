"""Wine-quality pipeline: load → train → evaluate → carbon report (→ deploy), on CPU.

Every step writes a ``kpi_co2`` Metrics artifact. Deployment runs only when ``deploy_target`` is
``"vertex"`` *and* the evaluation's ``deploy`` gate says ``"true"``; a local run skips it through
the parameter (default ``"none"``), never through a silent no-op inside the component.

Compile (images from :mod:`carbon_kfp.images`)::

    CARBON_KFP_IMAGE_REGISTRY=REGION-docker.pkg.dev/PROJECT/REPO \\
        carbon-kfp compile wine --output wine.yaml
"""

from kfp import dsl

from carbon_kfp.components import (
    carbon_report,
    deploy_wine_model,
    evaluate_wine_model,
    load_wine_data,
    train_wine_model,
)
from carbon_kfp.components.deploy_wine_model.component import DEFAULT_SERVING_IMAGE
from carbon_kfp.kfp import tracking_args

PIPELINE_NAME = "wine-quality"

#: Allowed values of string parameters that act as switches (checked by ``carbon_kfp.kfp.params``).
PARAMETER_CHOICES: dict[str, tuple[str, ...]] = {"deploy_target": ("none", "vertex")}


@dsl.pipeline(
    name=PIPELINE_NAME,
    description=(
        "Random forest on UCI wine quality (white) with per-step energy/CO2 (kpi_co2), "
        "a test-set gate and optional Vertex AI deployment."
    ),
)
def wine_pipeline(
    source: str = "",
    quality_threshold: int = 7,
    test_fraction: float = 0.2,
    seed: int = 42,
    n_estimators: int = 300,
    max_depth: int = 0,
    n_jobs: int = -1,
    deploy_min_roc_auc: float = 0.8,
    deploy_target: str = "none",
    project: str = "",
    location: str = "us-central1",
    model_display_name: str = "wine-quality-rf",
    endpoint_display_name: str = "wine-quality",
    serving_image: str = DEFAULT_SERVING_IMAGE,
    machine_type: str = "n1-standard-2",
    staging_bucket: str = "",
    project_name: str = "wine-quality",
    cloud_location: str = "",
) -> None:
    """Trains, evaluates and optionally deploys a wine-quality classifier, measuring each step.

    Args:
        source: CSV to read: ``https://`` URL, ``gs://`` URI, local path, or ``""`` for the
            white-wine file bundled with carbon-kfp.
        quality_threshold: ``quality >= quality_threshold`` is the positive class.
        test_fraction: Share of rows held out for evaluation.
        seed: Seed of the split and of the forest.
        n_estimators: Trees in the random forest.
        max_depth: Maximum tree depth; ``0`` is unlimited.
        n_jobs: Parallel fitting jobs; ``-1`` uses every CPU available to the step.
        deploy_min_roc_auc: Test ROC AUC the model must reach to be deployed.
        deploy_target: ``"none"`` (default; local runs) or ``"vertex"``.
        project: Google Cloud project for deployment; ``""`` uses the runtime's project.
        location: Vertex AI region for the Model Registry and the endpoint.
        model_display_name: Model Registry display name (new versions under one entry).
        endpoint_display_name: Endpoint to reuse or create.
        serving_image: Prediction image (prebuilt scikit-learn by default).
        machine_type: Serving machine type.
        staging_bucket: ``gs://`` bucket to stage a model that is not on Cloud Storage.
        project_name: Project name in every step's emissions record.
        cloud_location: Region the steps run in, for the grid intensity of every record (e.g.
            ``"europe-west4"`` when submitting to Vertex AI there); ``""`` uses the tracker's
            default (world average, flagged ``intensity_source=world-default``).
    """
    # A parameter, not LOCATION_PLACEHOLDER: kfp.local cannot resolve that placeholder.
    tracking = {"project_name": project_name, **tracking_args(cloud_location=cloud_location)}

    load = load_wine_data(
        source=source,
        quality_threshold=quality_threshold,
        test_fraction=test_fraction,
        seed=seed,
        **tracking,
    )
    # Cached on (source, threshold, split) like the rest: a file that changes behind the same
    # URL needs a run with caching off (Vertex: PipelineJob(enable_caching=False)).
    load.set_display_name("Load wine data").set_caching_options(True)

    train = train_wine_model(
        train_data=load.outputs["train_data"],
        n_estimators=n_estimators,
        max_depth=max_depth,
        seed=seed,
        n_jobs=n_jobs,
        **tracking,
    )
    train.set_display_name("Train random forest").set_caching_options(True)

    evaluate = evaluate_wine_model(
        model=train.outputs["model"],
        test_data=load.outputs["test_data"],
        deploy_min_roc_auc=deploy_min_roc_auc,
        **tracking,
    )
    evaluate.set_display_name("Evaluate on test set").set_caching_options(True)

    # The deploy step is conditional, so its kpi_co2 cannot feed a task outside the condition;
    # it is on the deploy task itself (and in the local run summary).
    report = carbon_report(
        kpi_co2_1=load.outputs["kpi_co2"],
        kpi_co2_2=train.outputs["kpi_co2"],
        kpi_co2_3=evaluate.outputs["kpi_co2"],
        title="Wine quality: energy and CO2 per step",
        pipeline_job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    )
    # Always rendered for this run; a cached step's record names an earlier job, so the report
    # shows it as cached and keeps it out of this run's total.
    report.set_display_name("Carbon report").set_caching_options(False)

    with (
        dsl.If(deploy_target == "vertex", name="deploy-target-vertex"),
        dsl.If(evaluate.outputs["deploy"] == "true", name="model-passed-gate"),
    ):
        deploy = deploy_wine_model(
            model=train.outputs["model"],
            project=project,
            location=location,
            model_display_name=model_display_name,
            endpoint_display_name=endpoint_display_name,
            serving_image=serving_image,
            machine_type=machine_type,
            staging_bucket=staging_bucket,
            **tracking,
        )
        # Side effects in another system: never reuse a cached "deployed" result.
        deploy.set_display_name("Deploy to Vertex AI").set_caching_options(False)
