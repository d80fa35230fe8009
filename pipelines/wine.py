"""Wine-quality pipeline: load → train → evaluate → carbon report (→ deploy), on CPU.

Every measured step writes a ``kpi_co2`` Metrics artifact. Deployment runs only when
``deploy_target`` is ``"vertex"`` *and* the evaluation's ``deploy`` gate says ``"true"``; a local
run skips it through the parameter (default ``"none"``), never through a silent no-op.

Deployment uses Google Cloud Pipeline Components' ``ModelUploadOp``, ``EndpointCreateOp`` and
``ModelDeployOp`` (:mod:`carbon_kfp.pipelines.gcpc`), whose ``google.VertexModel`` and
``google.VertexEndpoint`` artifacts link the run to the Model Registry and the endpoint in Vertex
AI's lineage. They run in GCPC's image in the job's own project and region, and only on Vertex AI.
With ``endpoint`` set the model goes to that existing endpoint (imported) instead of a new one,
and ``undeploy_idle_models`` then undeploys the models deployed there before (unless
``undeploy_previous=False``); with ``parent_model`` set it is uploaded as a new version of that
model instead of a new model.

Compile (images from :mod:`carbon_kfp.images`)::

    CARBON_KFP_IMAGE_REGISTRY=REGION-docker.pkg.dev/PROJECT/REPO \\
        carbon-kfp compile wine --output wine.yaml
"""

from kfp import dsl

from carbon_kfp.components import (
    check_serving_image,
    evaluate_wine_model,
    load_wine_data,
    train_wine_model,
    undeploy_idle_models,
)
from carbon_kfp.components.check_serving_image.component import DEFAULT_SERVING_IMAGE
from carbon_kfp.pipelines._steps import report_steps, tracking_inputs
from carbon_kfp.pipelines.gcpc import (
    LOCATION_PLACEHOLDER,
    UnmanagedContainerModel,
    VertexEndpoint,
    VertexModel,
    import_vertex_resource,
    load_op,
)

PIPELINE_NAME = "wine-quality"

#: Allowed values of string parameters that act as switches (checked by ``carbon_kfp.kfp.params``).
PARAMETER_CHOICES: dict[str, tuple[str, ...]] = {"deploy_target": ("none", "vertex")}

#: String parameters that name an existing Vertex AI resource (``""``: none), by collection
#: (``projects/P/locations/R/COLLECTION/ID``; checked by ``carbon-kfp submit``).
VERTEX_RESOURCE_PARAMETERS: dict[str, str] = {"endpoint": "endpoints", "parent_model": "models"}


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
    model_display_name: str = "wine-quality-rf",
    endpoint_display_name: str = "wine-quality",
    endpoint: str = "",
    undeploy_previous: bool = True,
    parent_model: str = "",
    serving_image: str = DEFAULT_SERVING_IMAGE,
    machine_type: str = "n1-standard-2",
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
        deploy_target: ``"none"`` (default; local runs) or ``"vertex"`` (Vertex AI only: upload
            to the Model Registry and deploy to an endpoint, in the job's project and region).
        model_display_name: Model Registry display name.
        endpoint_display_name: Display name of the endpoint created for the model (when
            ``endpoint`` is ``""``).
        endpoint: ``projects/P/locations/R/endpoints/ID`` of an existing endpoint to deploy to
            (the new model takes all its traffic); ``""`` creates a new endpoint each deploying
            run, which bills its replica until the model is undeployed.
        undeploy_previous: With ``endpoint`` set, undeploy this pipeline's earlier models (those
            deployed as ``model_display_name``) once the new one takes the traffic
            (``undeploy_idle_models``; each would otherwise keep a billed replica). Other models
            on the endpoint are never touched. ``False`` leaves them all.
        parent_model: ``projects/P/locations/R/models/ID`` of a Model Registry model to upload a
            new version of; ``""`` uploads a new model each deploying run.
        serving_image: Prediction image (prebuilt scikit-learn by default).
        machine_type: Serving machine type (one replica).
        project_name: Project name in every step's emissions record.
        cloud_location: Region the steps run in, for the grid intensity of every record (e.g.
            ``"europe-west4"`` when submitting to Vertex AI there); ``""`` uses the tracker's
            default (world average, flagged ``intensity_source=world-default``).
    """
    tracking = tracking_inputs(project_name, cloud_location)

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

    # The deploy steps (conditional; GCPC ops and an image check) write no kpi_co2.
    report_steps("Wine quality: energy and CO2 per step", load, train, evaluate)

    with (
        dsl.If(deploy_target == "vertex", name="deploy-target-vertex"),
        dsl.If(evaluate.outputs["deploy"] == "true", name="model-passed-gate"),
    ):
        check = check_serving_image(model=train.outputs["model"], serving_image=serving_image)
        check.set_display_name("Check serving image").set_caching_options(False)
        serving_model = dsl.importer(
            artifact_uri=check.outputs["artifact_uri"],
            artifact_class=UnmanagedContainerModel,
            metadata={"containerSpec": {"imageUri": serving_image}},
        )
        serving_model.set_display_name("Serving model")
        labels = {"pipeline": PIPELINE_NAME, "managed-by": "carbon-kfp"}
        upload_args = {
            "display_name": model_display_name,
            "unmanaged_container_model": serving_model.output,
            "location": LOCATION_PLACEHOLDER,
            "labels": labels,
        }
        with dsl.If(parent_model == "", name="new-model"):
            upload_new = load_op("model_upload")(**upload_args)
            upload_new.set_display_name("Upload to Model Registry")
        with dsl.Else(name="new-version"):
            parent = import_vertex_resource(VertexModel, parent_model)
            parent.set_display_name("Parent model")
            upload_version = load_op("model_upload")(**upload_args, parent_model=parent.output)
            upload_version.set_display_name("Upload new version")
        model = dsl.OneOf(upload_new.outputs["model"], upload_version.outputs["model"])

        with dsl.If(endpoint == "", name="new-endpoint"):
            # After the upload: no endpoint is created for a model that did not register.
            created = load_op("endpoint_create")(
                display_name=endpoint_display_name, location=LOCATION_PLACEHOLDER, labels=labels
            ).after(upload_new, upload_version)
            created.set_display_name("Create endpoint")
        with dsl.Else(name="existing-endpoint"):
            existing = import_vertex_resource(VertexEndpoint, endpoint)
            existing.set_display_name("Existing endpoint")
        deploy = load_op("model_deploy")(
            model=model,
            endpoint=dsl.OneOf(created.outputs["endpoint"], existing.output),
            deployed_model_display_name=model_display_name,
            dedicated_resources_machine_type=machine_type,
            dedicated_resources_min_replica_count=1,
            dedicated_resources_max_replica_count=1,
            traffic_split={"0": "100"},  # "0" is the model being deployed: it takes all traffic
        )
        deploy.set_display_name("Deploy to endpoint")
        with (
            dsl.If(endpoint != "", name="reused-endpoint"),
            dsl.If(undeploy_previous == True, name="undeploy-previous"),  # noqa: E712 (KFP)
        ):
            retire = undeploy_idle_models(
                endpoint=endpoint, deployed_model_display_name=model_display_name
            ).after(deploy)
            retire.set_display_name("Undeploy idle models")
        # Side effects in another system: never reuse a cached result.
        for task in (upload_new, upload_version, created, deploy, retire):
            task.set_caching_options(False)
