#!/usr/bin/env python3
"""One console URL with Alibaba Cloud's official Python SDK: the script a user would write.

The comparison point for `ecs-vnc-operator url` in scripts/bench.sh. It calls
DescribeInstanceVncUrl (aliyun-python-sdk-core + aliyun-python-sdk-ecs) and prints the same
console URL the CLI prints: `<base>?vncUrl=<VncUrl as returned>&instanceId=<id>&isWindows=<bool>`.

    sdk_url.py --endpoint http://127.0.0.1:PORT --region-id cn-hangzhou --instance-id i-... \
               [--windows false]

Credentials come from ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET, the
variables the CLI reads. The endpoint override is the SDK's own per-request one
(`AcsRequest.set_endpoint`, a bare host[:port]) with the protocol set to http; the SDK's default
port (80) is then left out of the URL, so the host carries the simulator's port.
"""

import argparse
import json
import os
import sys
from urllib.parse import urlsplit

from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.http import protocol_type
from aliyunsdkecs.request.v20140526.DescribeInstanceVncUrlRequest import (
    DescribeInstanceVncUrlRequest,
)

CONSOLE_BASE = "https://g.alicdn.com/aliyun/ecs-console-vnc2/0.0.8/index.html"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="http://HOST:PORT of the ECS endpoint")
    parser.add_argument("--region-id", required=True)
    parser.add_argument("--instance-id", required=True)
    parser.add_argument("--windows", choices=["true", "false"], default="false")
    args = parser.parse_args()

    key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if not key_id or not secret:
        print("error: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET",
              file=sys.stderr)
        return 2
    endpoint = urlsplit(args.endpoint)
    if endpoint.scheme != "http" or not endpoint.netloc:
        print("error: --endpoint must be http://HOST:PORT", file=sys.stderr)
        return 2

    # auto_retry off: one request per URL, like the CLI's first attempt.
    client = AcsClient(key_id, secret, args.region_id, auto_retry=False)
    request = DescribeInstanceVncUrlRequest()
    request.set_endpoint(endpoint.netloc)
    request.set_protocol_type(protocol_type.HTTP)
    request.set_accept_format("JSON")
    request.set_InstanceId(args.instance_id)
    try:
        body = client.do_action_with_exception(request)
    except ServerException as e:
        print(f"error: {e.get_error_code()}: {e.get_error_msg()} "
              f"(HTTP {e.get_http_status()}, RequestId: {e.get_request_id()})", file=sys.stderr)
        return 1
    except ClientException as e:
        print(f"error: {e.get_error_code()}: {e.get_error_msg()}", file=sys.stderr)
        return 2
    vnc_url = json.loads(body)["VncUrl"]
    print(f"{CONSOLE_BASE}?vncUrl={vnc_url}&instanceId={args.instance_id}&isWindows={args.windows}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
