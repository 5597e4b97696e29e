#!/usr/bin/env python3
"""Writes a repository's advisories the way dnf finds them in its cache:
REPO/repodata/repomd.xml naming REPO/repodata/<checksum>-updateinfo.xml.<ext>,
both made by createrepo_c (the library createrepo and Koji use), so the
metadata hardend reads is not the test's own idea of the format.

Usage: dnf_repodata.py REPO gz|zst|xz ADVISORIES_JSON

ADVISORIES_JSON is a list of {"id", "type", "severity", "packages": [{"name",
"epoch", "version", "release", "arch"}]}. Prints one JSON object:
{"updateinfo": the location href written in repomd.xml}.
"""

import datetime
import json
import os
import sys

import createrepo_c as cr

COMPRESSIONS = {"gz": cr.GZ_COMPRESSION, "zst": cr.ZSTD_COMPRESSION, "xz": cr.XZ_COMPRESSION}


def main() -> None:
    repo, compression, advisories = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    repodata = os.path.join(repo, "repodata")
    os.makedirs(repodata, exist_ok=True)
    info = cr.UpdateInfo()
    for adv in advisories:
        collection = cr.UpdateCollection()
        collection.shortname = "test-repo"
        collection.name = "test repository"
        for p in adv["packages"]:
            pkg = cr.UpdateCollectionPackage()
            pkg.name = p["name"]
            pkg.epoch = p["epoch"]
            pkg.version = p["version"]
            pkg.release = p["release"]
            pkg.arch = p["arch"]
            pkg.filename = f"{p['name']}-{p['version']}-{p['release']}.{p['arch']}.rpm"
            collection.append(pkg)
        record = cr.UpdateRecord()
        record.fromstr = "security@example.com"
        record.status = "final"
        record.type = adv["type"]
        record.version = "2"
        record.id = adv["id"]
        record.title = f"{adv['id']} update"
        record.severity = adv.get("severity", "")
        record.issued_date = datetime.datetime(2024, 1, 1)
        record.append_collection(collection)
        info.append(record)
    plain = os.path.join(repodata, "updateinfo.xml")
    with open(plain, "w", encoding="utf-8") as f:
        f.write(info.xml_dump())
    record = cr.RepomdRecord("updateinfo", plain)
    packed = record.compress_and_fill(cr.SHA256, COMPRESSIONS[compression])
    packed.type = "updateinfo"
    packed.rename_file()
    os.remove(plain)
    repomd = cr.Repomd()
    repomd.set_record(packed)
    with open(os.path.join(repodata, "repomd.xml"), "w", encoding="utf-8") as f:
        f.write(repomd.xml_dump())
    print(json.dumps({"updateinfo": packed.location_href}))


if __name__ == "__main__":
    main()
