"""`vkel env`: versions, device and cache paths, for bug reports."""

from typing import Annotated

import typer


def env_cli(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    no_device: Annotated[bool, typer.Option("--no-device", help="Do not import torch to probe the device.")] = False,
):
    """Print versions, the compute device and cache paths.

    To stdout: it is the report, for bug reports."""
    import json

    from ..core.env_info import collect

    info = collect(with_device=not no_device)
    if json_output:
        print(json.dumps(info, indent=2))
        return
    print(f"vkel {info['vkel']}  python {info['python']}  {info['platform']}")
    for name, version in info["packages"].items():
        print(f"  {name:<16} {version or '-'}")
    print(f"device: {info['device']}")
    print(f"cache:  {info['cache_dir']}")
