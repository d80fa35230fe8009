"""``undeploy_idle_models``: after a deploy to a reused endpoint, free the replicas of the models
that no longer receive traffic."""

from typing import NamedTuple

from .._kit import vertex_sdk_component


@vertex_sdk_component
def undeploy_idle_models(
    endpoint: str,
) -> NamedTuple("Undeployed", [("deployed_model_ids", list)]):  # type: ignore[valid-type]
    """Undeploys every model on ``endpoint`` whose share of the traffic is 0 %.

    Runs after GCPC's ``ModelDeployOp`` moved all the endpoint's traffic to the new model: the
    models deployed there before keep a dedicated replica each (billed, and drawing power) until
    they are undeployed. Their Model Registry entries stay.

    Never undeploys a model that receives traffic, and nothing at all when no model does (a
    traffic split that does not say which model serves is left to a person).

    Args:
        endpoint: ``projects/P/locations/R/endpoints/ID`` of the endpoint.

    Returns:
        ``deployed_model_ids``: the IDs undeployed, in the endpoint's order.

    Raises:
        ValueError: ``endpoint`` is not a full endpoint resource name.
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
    resource = aiplatform.Endpoint(endpoint)
    traffic = {str(key): int(value) for key, value in (resource.traffic_split or {}).items()}
    deployed = [str(model.id) for model in resource.list_models()]
    serving = [model_id for model_id in deployed if traffic.get(model_id, 0) > 0]
    idle = [model_id for model_id in deployed if traffic.get(model_id, 0) == 0]
    if not serving:
        print(f"{endpoint}: no deployed model receives traffic ({traffic}); nothing undeployed")
        idle = []
    for model_id in idle:
        resource.undeploy(deployed_model_id=model_id)
        print(f"{endpoint}: undeployed idle model {model_id}")
    print(f"{endpoint}: serving {', '.join(serving) or 'none'}; undeployed {len(idle)}")
    return namedtuple("Undeployed", ["deployed_model_ids"])(idle)
