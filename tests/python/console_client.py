#!/usr/bin/env python3
"""A hardend Console client written only from proto/hardend.proto and the
stock grpcio packages, to show that clients nobody here wrote can query the
collector.

Usage: console_client.py TARGET CA CERT KEY [--server-name NAME]

TARGET is host:port of the collector. Generates the Python stubs from
proto/hardend.proto (with the helper of agent_client.py), connects with
mutual TLS using the console's certificate, calls FleetSummary and
ListFindings on hardend.v1.Console and prints one JSON object with both
answers (or {"error": CODE_NAME, "details": ...} for a failed call).
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from agent_client import call, generate_stubs  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("ca")
    parser.add_argument("cert")
    parser.add_argument("key")
    parser.add_argument("--server-name")
    args = parser.parse_args()

    import grpc
    from google.protobuf import json_format

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca),
        private_key=read(args.key),
        certificate_chain=read(args.cert),
    )
    options = []
    if args.server_name:
        options.append(("grpc.ssl_target_name_override", args.server_name))

    with tempfile.TemporaryDirectory() as stubs:
        pb2, pb2_grpc = generate_stubs(stubs)
        with grpc.secure_channel(args.target, credentials, options=options) as channel:
            console = pb2_grpc.ConsoleStub(channel)

            def as_json(message):
                return json_format.MessageToDict(message, preserving_proto_field_name=True)

            out = {
                "summary": call(lambda: as_json(console.FleetSummary(pb2.FleetSummaryRequest(), timeout=10))),
                "findings": call(lambda: as_json(console.ListFindings(pb2.ListFindingsRequest(), timeout=10))),
                "critical": call(lambda: as_json(console.ListFindings(
                    pb2.ListFindingsRequest(severity=pb2.SEVERITY_CRITICAL), timeout=10))),
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
