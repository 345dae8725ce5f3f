"""`threadweaver zoo list|show NAME`: the known models of harness/zoo.yaml."""

from __future__ import annotations

import argparse
import json

EXAMPLE = """examples:
  threadweaver zoo list
  threadweaver zoo show toy-threadweaver --json
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("zoo", help="Known models: `zoo list`, `zoo show NAME`", description=__doc__,
                              epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="List known models")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=run_list)
    show = sub.add_parser("show", help="Show one model")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.set_defaults(func=run_show)


def run_list(args) -> int:
    from harness.zoo import load_zoo

    zoo = load_zoo()
    if args.json:
        for entry in zoo.values():
            print(json.dumps(entry.to_dict()))
        return 0
    width = max(len(n) for n in zoo)
    print(f"{'name':<{width}}  {'format':<12}  {'mode':<10}  pretrained")
    for e in zoo.values():
        print(f"{e.name:<{width}}  {e.format or '-':<12}  {'parallel' if e.parallel else 'sequential':<10}  "
              f"{e.pretrained() or '(unknown)'}")
    return 0


def run_show(args) -> int:
    from harness.zoo import get_entry

    entry = get_entry(args.name)
    data = entry.to_dict()
    if args.json:
        print(json.dumps(data))
        return 0
    for key, value in data.items():
        print(f"{key}: {value if value not in (None, '', [], {}) else '-'}")
    return 0
