#!/usr/bin/env python3
"""Builds a one-layer container image as a docker-archive tar, without Docker or a registry.

    image.py NAME:TAG ROOTFS OUT.tar --entrypoint '["/pause"]' [--cmd '["serve"]']
             [--env K=V]... [--user 65532:65532] [--workdir /data] [--owner PATH=UID:GID]...

Every file is owned by root unless an --owner names its path (and what lies under it). The
layer is reproducible: sorted names, time 0. containerd imports the tar with
`ctr -n k8s.io images import`, under exactly NAME:TAG.
"""

import argparse
import hashlib
import io
import json
import platform
import tarfile
from pathlib import Path


def layer(rootfs, owners):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = sorted(p for p in Path(rootfs).rglob("*"))
        for path in paths:
            name = str(path.relative_to(rootfs))
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            for prefix, (uid, gid) in owners.items():
                if name == prefix or name.startswith(prefix + "/"):
                    info.uid, info.gid = uid, gid
            info.mtime = 0
            if info.isfile():
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name")
    parser.add_argument("rootfs")
    parser.add_argument("out")
    parser.add_argument("--entrypoint", required=True)
    parser.add_argument("--cmd", default="null")
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--user", default="")
    parser.add_argument("--workdir", default="/")
    parser.add_argument("--owner", action="append", default=[])
    args = parser.parse_args()
    owners = {}
    for spec in args.owner:
        path, ids = spec.split("=")
        uid, gid = ids.split(":")
        owners[path.strip("/")] = (int(uid), int(gid))
    data = layer(args.rootfs, owners)
    layer_digest = hashlib.sha256(data).hexdigest()
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + args.env
    config = {
        # The machine's: the binaries in the layer are built here.
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine()),
        "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": {"Env": env, "Entrypoint": json.loads(args.entrypoint), "Cmd": json.loads(args.cmd),
                   "WorkingDir": args.workdir, "User": args.user},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "scripts/lib/kubernetes/image.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [args.name], "Layers": [f"{layer_digest}/layer.tar"]}]
    with tarfile.open(args.out, "w") as out:
        for name, content in ((f"{layer_digest}/layer.tar", data), (config_name, config_bytes),
                              ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            out.addfile(info, io.BytesIO(content))
    print(f"built {args.name} ({len(data) // 1024} KiB) -> {args.out}")


if __name__ == "__main__":
    main()
