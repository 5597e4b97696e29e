#!/usr/bin/env python3
"""A hardend local-API client written only from proto/hardend.proto and the
stock grpcio packages, to show that clients nobody here wrote can use the
daemon's socket.

Usage: agent_client.py SOCKET [--as-uid UID]

Generates the Python stubs from proto/hardend.proto into a temporary
directory, then calls GetReport, GetStatus and ListPolicies on
hardend.v1.Agent, grpc.health.v1 Check (for "" and "hardend.v1.Agent"), and
lists the services through server reflection (v1alpha, the version the
grpcio-reflection package speaks). With --as-uid the process drops to that
uid and gid (and no supplementary groups) after loading everything and before
connecting. Prints one JSON object: for each call either its answer or
{"error": CODE_NAME, "details": ...}.

One setting is needed for any gRPC C-core client (Python, C++, Ruby, grpcurl
alike) on a tonic server's Unix socket: the channel's default `:authority`
for a `unix:` target is the socket path, percent-encoded (`run%2Fhardend...`),
which the server's HTTP/2 layer (h2, through the `http` crate) rejects as a
malformed authority with RST_STREAM PROTOCOL_ERROR before any gRPC code runs.
Clients set the conventional `localhost` instead, as grpc-go and Kubernetes
do for Unix sockets.
"""

import argparse
import importlib
import json
import os
import sys
import tempfile

PROTO_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto"))


def generate_stubs(out_dir):
    """Runs protoc (the one bundled with grpcio-tools) on hardend.proto."""
    from grpc_tools import protoc
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    status = protoc.main([
        "grpc_tools.protoc",
        "-I", PROTO_DIR,
        "-I", include,
        "--python_out", out_dir,
        "--grpc_python_out", out_dir,
        os.path.join(PROTO_DIR, "hardend.proto"),
    ])
    if status != 0:
        raise SystemExit(f"protoc failed with status {status}")
    sys.path.insert(0, out_dir)
    return importlib.import_module("hardend_pb2"), importlib.import_module("hardend_pb2_grpc")


def call(fn):
    """The answer of fn(), or the gRPC error it raised, as JSON-ready data."""
    import grpc

    try:
        return fn()
    except grpc.RpcError as e:
        return {"error": e.code().name, "details": e.details()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("socket")
    parser.add_argument("--as-uid", type=int)
    args = parser.parse_args()

    import grpc
    from google.protobuf import json_format
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    # Everything is loaded (and the stubs' directory removed) before the
    # process gives up root, since the other uid may read none of it.
    with tempfile.TemporaryDirectory() as stubs:
        pb2, pb2_grpc = generate_stubs(stubs)
    channel = grpc.insecure_channel(
        f"unix:{args.socket}", options=[("grpc.default_authority", "localhost")]
    )

    if args.as_uid is not None:
        os.setgroups([])
        os.setgid(args.as_uid)
        os.setuid(args.as_uid)

    def to_dict(message):
        return json_format.MessageToDict(message, preserving_proto_field_name=True)

    out = {"uid": os.getuid()}
    with channel:
        agent = pb2_grpc.AgentStub(channel)
        out["report"] = call(lambda: to_dict(agent.GetReport(pb2.GetReportRequest(), timeout=10)))
        out["status"] = call(lambda: to_dict(agent.GetStatus(pb2.GetStatusRequest(), timeout=10)))
        out["policies"] = call(lambda: to_dict(agent.ListPolicies(pb2.ListPoliciesRequest(), timeout=10)))

        health = health_pb2_grpc.HealthStub(channel)

        def check(service):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)

        out["health"] = call(lambda: check(""))
        out["health_agent"] = call(lambda: check("hardend.v1.Agent"))

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

        def services():
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            for answer in reflection.ServerReflectionInfo(iter([request]), timeout=10):
                return sorted(s.name for s in answer.list_services_response.service)
            return []

        out["services"] = call(services)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
