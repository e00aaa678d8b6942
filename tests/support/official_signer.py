"""Alibaba's official RPC signer (PyPI aliyun-python-sdk-core), driven by tests/signature_differential.rs.

One process for all cases: reads one JSON object per line on stdin, writes one JSON object per line on
stdout, in the same order. Nothing here re-implements the algorithm; every string to sign and every
signature comes out of the SDK's own functions:

  kind "compose": the RPC composer's string-to-sign and signature functions on exactly the given
      parameters (aliyunsdkcore/auth/composer/rpc_signature_composer.py, which signs with
      aliyunsdkcore/auth/algorithm/sha_hmac1.py):
      {"id", "kind", "method", "secret", "params": [[name, value], ...]}
      -> {"id", "string_to_sign", "signature"}

  kind "request": the SDK's whole request path, RpcRequest.get_url (what AcsClient calls), with the
      SDK's Timestamp and SignatureNonce generators pinned to the case's values so the result is
      reproducible:
      {"id", "kind", "method", "secret", "access_key_id", "region_id", "product", "version",
       "action", "format", "timestamp", "nonce", "query": [[n, v], ...], "body": [[n, v], ...]}
      -> {"id", "string_to_sign", "signature", "url"}

The first line written is a header: {"sdk": "aliyun-python-sdk-core <version>", "python": "..."}.
Exits with status 3 and a message naming scripts/venv.sh when the SDK is not importable.
"""

import io
import json
import sys
from urllib.parse import unquote

try:
    import aliyunsdkcore
    from aliyunsdkcore.auth.algorithm import sha_hmac1
    from aliyunsdkcore.auth.composer import rpc_signature_composer as composer
    from aliyunsdkcore.request import RpcRequest
    from aliyunsdkcore.utils import parameter_helper
except ImportError as err:
    sys.stderr.write(
        "official_signer.py: cannot import aliyunsdkcore (PyPI aliyun-python-sdk-core): %s\n"
        "run scripts/venv.sh to install tests/requirements.txt into the venv\n" % err
    )
    sys.exit(3)

# Module-level functions with two leading underscores: not name-mangled outside a class, but look
# them up by name so the intent (calling the SDK's private helpers) is explicit.
compose_string_to_sign = getattr(composer, "__compose_string_to_sign")
get_signature = getattr(composer, "__get_signature")


def compose(case):
    # The SDK keeps parameters in a dict: the Rust side never sends a name twice.
    params = dict((name, value) for name, value in case["params"])
    string_to_sign = compose_string_to_sign(case["method"], params)
    signature = get_signature(string_to_sign, case["secret"], sha_hmac1)
    return {"string_to_sign": string_to_sign, "signature": signature}


def request(case):
    parameter_helper.get_iso_8061_date = lambda: case["timestamp"]
    parameter_helper.get_uuid = lambda: case["nonce"]
    req = RpcRequest(case["product"], case["version"], case["action"], format=case["format"])
    req.set_method(case["method"])
    for name, value in case["query"]:
        req.add_query_param(name, value)
    for name, value in case["body"]:
        req.add_body_params(name, value)
    url = req.get_url(case["region_id"], case["access_key_id"], case["secret"])
    signatures = [
        unquote(pair[len("Signature="):])
        for pair in url.split("?", 1)[1].split("&")
        if pair.startswith("Signature=")
    ]
    if len(signatures) != 1:
        raise ValueError("expected exactly one Signature in the SDK's URL %r" % url)
    return {"string_to_sign": req.string_to_sign, "signature": signatures[0], "url": url}


def main():
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="\n")
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
    header = {
        "sdk": "aliyun-python-sdk-core %s" % aliyunsdkcore.__version__,
        "python": sys.version.split()[0],
    }
    out.write(json.dumps(header) + "\n")
    for line in stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        kind = case["kind"]
        if kind == "compose":
            result = compose(case)
        elif kind == "request":
            result = request(case)
        else:
            raise ValueError("unknown case kind %r" % kind)
        result["id"] = case["id"]
        out.write(json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
