#!/usr/bin/env python3
"""Scrapes a hardend metrics endpoint with urllib and parses it with
prometheus_client's text parser (code nobody here wrote), then prints one
JSON object: the Content-Type and every sample as name, labels and value.

Usage: scrape_metrics.py URL
"""

import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main() -> None:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
        content_type = response.headers.get("Content-Type")
        text = response.read().decode("utf-8")
    families = {}
    samples = []
    for family in text_string_to_metric_families(text):
        families[family.name] = {"type": family.type, "help": family.documentation}
        for sample in family.samples:
            samples.append(
                {"name": sample.name, "labels": sample.labels, "value": sample.value}
            )
    # Values are finite in hardend's expositions; allow_nan=False says so.
    print(
        json.dumps(
            {"content_type": content_type, "families": families, "samples": samples},
            allow_nan=False,
        )
    )


if __name__ == "__main__":
    main()
