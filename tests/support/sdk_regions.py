"""ECS's regions as Alibaba's official Python SDK knows them, for tests/sdk_regions.rs.

Prints one JSON object:
  {"core": "<aliyun-python-sdk-core version>", "ecs": "<aliyun-python-sdk-ecs version>",
   "regions": [...], "overrides": [[region, host], ...]}
where "regions" is the sorted union of
  - "regions" of aliyunsdkcore/data/endpoints.json (the region table the core resolver checks),
  - the keys of its "regional_endpoints"["ecs"],
  - the keys of aliyunsdkecs/endpoint.py's endpoint_map (ECS's per-region overrides),
and "overrides" is that endpoint_map, sorted. Nothing is computed beyond reading the SDK's data.
Exits with status 3 and a message naming scripts/venv.sh when a package is not importable.
"""

import json
import os
import sys

try:
    import aliyunsdkcore
    import aliyunsdkecs
    from aliyunsdkecs.endpoint import endpoint_data
except ImportError as e:
    sys.stderr.write(
        f"{e}: run scripts/venv.sh (tests/requirements.txt lists aliyun-python-sdk-core and "
        "aliyun-python-sdk-ecs)\n"
    )
    sys.exit(3)

path = os.path.join(os.path.dirname(aliyunsdkcore.__file__), "data", "endpoints.json")
with open(path, encoding="utf-8") as f:
    data = json.load(f)
overrides = endpoint_data.getEndpointMap()
regions = set(data["regions"]) | set(data["regional_endpoints"].get("ecs", {})) | set(overrides)
json.dump(
    {
        "core": aliyunsdkcore.__version__,
        "ecs": aliyunsdkecs.__version__,
        "regions": sorted(regions),
        "overrides": sorted(overrides.items()),
    },
    sys.stdout,
)
