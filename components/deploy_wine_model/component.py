"""``deploy_wine_model``: Vertex AI Model Registry upload and endpoint deployment."""

from kfp.dsl import Artifact, Input, Metrics, Model, Output

from .._kit import kit_component

#: Newest prebuilt scikit-learn serving image known to google-cloud-aiplatform 1.16x. Repeated as a
#: literal in the signature because KFP runs the function's source without this module.
DEFAULT_SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"


@kit_component
def deploy_wine_model(
    model: Input[Model],
    vertex_model: Output[Artifact],
    vertex_endpoint: Output[Artifact],
    kpi_co2: Output[Metrics],
    project: str = "",
    location: str = "us-central1",
    model_display_name: str = "wine-quality-rf",
    endpoint_display_name: str = "wine-quality",
    serving_image: str = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest",
    machine_type: str = "n1-standard-2",
    min_replicas: int = 1,
    max_replicas: int = 1,
    staging_bucket: str = "",
    undeploy_previous: bool = True,
    check_sklearn_version: bool = True,
    project_name: str = "wine-quality",
    pipeline_job: str = "",
    pipeline_task: str = "",
    cloud_location: str = "",
) -> None:
    """Uploads the model to the Vertex AI Model Registry and deploys it to an endpoint.

    A model with the same display name already in the registry gets a new version (``parent_model``)
    instead of a second entry. An endpoint with ``endpoint_display_name`` is reused (the newest when
    several match) and created otherwise. The new deployment takes 100 % of the traffic
    (``traffic_split={"0": 100}``); with ``undeploy_previous`` the deployments that were on the
    endpoint before are undeployed afterwards, so their replicas stop costing money.

    Args:
        model: Directory with ``model.joblib`` from ``train_wine_model`` (a ``gs://`` URI on
            Vertex AI; a local directory needs ``staging_bucket``).
        vertex_model: Output pointing at the registered model version (``uri`` is the REST URL;
            metadata ``resourceName``, ``displayName``, ``servingImage``).
        vertex_endpoint: Output pointing at the endpoint (``uri`` REST URL; metadata
            ``resourceName``, ``displayName``, ``created``).
        kpi_co2: Energy/CO2 of this step (DESIGN §3 keys; JSON record at ``kpi_co2.path``).
        project: Google Cloud project; ``""`` takes the one of the runtime credentials.
        location: Vertex AI region of the registry and the endpoint.
        model_display_name: Display name in the Model Registry (also the deployed model's name).
        endpoint_display_name: Display name of the endpoint to reuse or create.
        serving_image: Prediction image; a prebuilt ``sklearn-cpu.X-Y`` image by default.
        machine_type: Machine type of the serving replicas.
        min_replicas: Minimum serving replicas (at least 1).
        max_replicas: Maximum serving replicas (at least ``min_replicas``).
        staging_bucket: ``gs://`` bucket used to upload a model that is not on GCS already.
        undeploy_previous: Undeploy the endpoint's earlier deployments after this one succeeds.
        check_sklearn_version: Fail before uploading when ``serving_image`` is a prebuilt
            ``sklearn-cpu.X-Y`` image whose X.Y differs from the scikit-learn that trained the
            model (the pickle would not load in the server, and the deploy would fail after
            many minutes).
        project_name: Project name written into the emissions record.
        pipeline_job: Pipeline job name for the emissions record.
        pipeline_task: Pipeline task name for the emissions record.
        cloud_location: Vertex AI region the step runs in (grid intensity of that region);
            ``""`` leaves the location to the tracker defaults.

    Raises:
        ValueError: Bad replica counts, a local model without ``staging_bucket``, or a
            scikit-learn version mismatch with the serving image.
    """
    import re

    from google.cloud import aiplatform

    from carbon_kfp.kfp import track

    if min_replicas < 1 or max_replicas < min_replicas:
        raise ValueError(
            f"min_replicas={min_replicas}, max_replicas={max_replicas}: expected "
            "1 <= min_replicas <= max_replicas"
        )
    trained_with = str(model.metadata.get("framework_version", ""))
    prebuilt = re.search(r"/sklearn-cpu\.(\d+)-(\d+)(?::|@|$)", serving_image)
    if check_sklearn_version and prebuilt and trained_with:
        served = f"{prebuilt.group(1)}.{prebuilt.group(2)}"
        if ".".join(trained_with.split(".")[:2]) != served:
            raise ValueError(
                f"model trained with scikit-learn {trained_with} but {serving_image} serves "
                f"scikit-learn {served}; pin scikit-learn=={served}.* in the training image, "
                "choose the matching serving image, or set check_sklearn_version=False"
            )
    artifact_uri = model.uri
    if not artifact_uri.startswith("gs://") and not staging_bucket:
        raise ValueError(
            f"model {artifact_uri} is not on Cloud Storage; set staging_bucket=gs://BUCKET"
        )
    labels = {"pipeline": "wine-quality", "managed-by": "carbon-kfp"}

    with track(
        kpi_co2,
        project_name=project_name,
        pipeline_job=pipeline_job,
        pipeline_task=pipeline_task,
        cloud_location=cloud_location,
        output_dir=None,
    ):
        existing = aiplatform.Model.list(
            filter=f'display_name="{model_display_name}"',
            order_by="create_time desc",
            project=project or None,
            location=location,
        )
        registered = aiplatform.Model.upload(
            display_name=model_display_name,
            artifact_uri=artifact_uri,
            serving_container_image_uri=serving_image,
            parent_model=existing[0].resource_name if existing else None,
            labels=labels,
            staging_bucket=staging_bucket or None,
            sync=True,
            project=project or None,
            location=location,
        )
        print(f"registered {registered.resource_name} (serving image {serving_image})")

        endpoints = aiplatform.Endpoint.list(
            filter=f'display_name="{endpoint_display_name}"',
            order_by="create_time desc",
            project=project or None,
            location=location,
        )
        created = not endpoints
        if endpoints:
            endpoint = endpoints[0]
            if len(endpoints) > 1:
                print(f"{len(endpoints)} endpoints named {endpoint_display_name!r}; using newest")
        else:
            endpoint = aiplatform.Endpoint.create(
                display_name=endpoint_display_name,
                labels=labels,
                sync=True,
                project=project or None,
                location=location,
            )
        previous = [deployed.id for deployed in endpoint.list_models()] if not created else []

        registered.deploy(
            endpoint=endpoint,
            deployed_model_display_name=model_display_name,
            machine_type=machine_type,
            min_replica_count=min_replicas,
            max_replica_count=max_replicas,
            traffic_split={"0": 100},  # "0" is the model being deployed
            sync=True,
        )
        if undeploy_previous:
            for deployed_model_id in previous:
                endpoint.undeploy(deployed_model_id=deployed_model_id, sync=True)

    api = f"https://{location}-aiplatform.googleapis.com/v1"
    vertex_model.uri = f"{api}/{registered.resource_name}"
    vertex_model.metadata.update(
        {
            "resourceName": registered.resource_name,
            "displayName": model_display_name,
            "servingImage": serving_image,
        }
    )
    vertex_endpoint.uri = f"{api}/{endpoint.resource_name}"
    vertex_endpoint.metadata.update(
        {
            "resourceName": endpoint.resource_name,
            "displayName": endpoint_display_name,
            "created": created,
            "undeployed": len(previous) if undeploy_previous else 0,
        }
    )
    print(f"deployed to {endpoint.resource_name} on {machine_type}, 100% traffic")
