"""``undeploy_idle_models``: after a deploy to a reused endpoint, free the replicas of the models
that no longer receive traffic."""

from typing import NamedTuple

from .._kit import vertex_sdk_component


@vertex_sdk_component
def undeploy_idle_models(
    endpoint: str,
    deployed_model_display_name: str,
) -> NamedTuple("Undeployed", [("deployed_model_ids", list)]):  # type: ignore[valid-type]
    """Undeploys this pipeline's earlier models from ``endpoint`` once they get no traffic.

    Runs after GCPC's ``ModelDeployOp`` moved all the endpoint's traffic to the new model: the
    models deployed there before keep a dedicated replica each (billed, and drawing power) until
    they are undeployed. Only models deployed under ``deployed_model_display_name`` (the name the
    pipeline deploys with) are touched, so other teams' canaries and rollback targets on the same
    endpoint stay. Their Model Registry entries stay too.

    Safety: the models and the traffic split are read from one snapshot of the endpoint, and the
    split is read again before each undeploy: a model that receives traffic is never undeployed
    (another run may have deployed in between), and nothing is undeployed when no model receives
    traffic.

    Args:
        endpoint: ``projects/P/locations/R/endpoints/ID`` of the endpoint.
        deployed_model_display_name: Display name of the deployed models to consider.

    Returns:
        ``deployed_model_ids``: the IDs undeployed, in the endpoint's order.

    Raises:
        ValueError: ``endpoint`` is not a full endpoint resource name, or the display name is
            empty.
        google.api_core.exceptions.GoogleAPICallError: an API call failed (the models undeployed
            before it are printed).
    """
    import re
    from collections import namedtuple

    from google.cloud import aiplatform

    if not re.fullmatch(r"projects/[^/]+/locations/[^/]+/endpoints/[^/]+", endpoint):
        raise ValueError(
            f"endpoint={endpoint!r}: expected projects/PROJECT/locations/REGION/endpoints/ID"
        )
    if not deployed_model_display_name.strip():
        raise ValueError("deployed_model_display_name='': expected the name models are deployed as")
    resource = aiplatform.Endpoint(endpoint)
    # One GET: the models (ID -> display name) and the split below are consistent.
    models = {str(m.id): m.display_name for m in resource.list_models()}
    traffic = {str(k): int(v) for k, v in resource.gca_resource.traffic_split.items()}
    serving = [model_id for model_id in models if traffic.get(model_id, 0) > 0]
    idle = [
        model_id
        for model_id, name in models.items()
        if name == deployed_model_display_name and traffic.get(model_id, 0) == 0
    ]
    if not serving:
        print(f"{endpoint}: no deployed model receives traffic ({traffic}); nothing undeployed")
        idle = []
    undeployed = []
    for model_id in idle:
        if int(resource.traffic_split.get(model_id, 0)) > 0:  # a fresh GET: it serves now
            print(f"{endpoint}: model {model_id} receives traffic now; kept")
            continue
        resource.undeploy(deployed_model_id=model_id)
        undeployed.append(model_id)
        print(f"{endpoint}: undeployed idle model {model_id} ({deployed_model_display_name})")
    print(f"{endpoint}: serving {', '.join(serving) or 'none'}; undeployed {len(undeployed)}")
    return namedtuple("Undeployed", ["deployed_model_ids"])(undeployed)
