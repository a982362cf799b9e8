"""`xbackprop data`: the data sets xbackprop can download or ships, where they are, and a
verified download.

    xbackprop data list
    xbackprop data path mnist
    xbackprop data download mnist [--dir DIR] [--mirror URL]
"""

from __future__ import annotations

import argparse

from ..data import files, remote
from . import count

#: the tables and images inside the package, for `data list`
SHIPPED = {
    "digits": "8x8 handwritten digits, 1,797 images (UCI), xb.data.load_digits()",
    "forest-fires": "UCI forest fires, 517 rows, burned area from weather, "
                    "xb.data.load_forest_fires()",
    "energy": "UCI energy efficiency, 768 buildings, heating and cooling load, "
              "xb.data.load_energy()",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser(
        "data", help="list, locate and download data sets (MNIST, Fashion-MNIST)",
        description="Data sets: those that ship with xbackprop and those it downloads, "
        f"verified by SHA-256, into ${files.DATA_ENV_VAR} (default: the user cache folder, "
        "~/.cache/xbackprop on Linux).")
    which = data.add_subparsers(dest="action", metavar="ACTION", required=True)
    which.add_parser("list", help="every data set, and whether it is here")
    path = which.add_parser("path", help="print the folder a data set is downloaded to")
    path.add_argument("name", choices=list(remote.REMOTE_SETS))
    get = which.add_parser(
        "download", help="download a data set and verify every file's SHA-256",
        description="Download the files of a data set into its folder (or --dir), verify each "
        "file's SHA-256, and keep files that are already there and verify. An interrupted "
        "download resumes where it stopped when run again.")
    get.add_argument("name", choices=list(remote.REMOTE_SETS))
    get.add_argument("--dir", metavar="DIR", help="folder for the files (default: "
                     f"${files.DATA_ENV_VAR}/NAME or the user cache folder)")
    get.add_argument("--mirror", metavar="URL", action="append",
                     help="base URL to fetch from instead of the official mirrors (repeatable)")
    get.add_argument("--retries", type=count(1), default=3,
                     help="attempts per file and mirror")
    get.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(args: argparse.Namespace) -> int:
    if args.action == "path":
        print(remote.get_remote_set(args.name).folder())
        return 0
    if args.action == "list":
        _list()
        return 0
    # a failed download is an error like any other (status 2): the message lists the files,
    # their checksums and the folder to copy them into
    folder = remote.download(args.name, args.dir, mirrors=args.mirror, retries=args.retries,
                             progress=not args.quiet)
    loader = f"load_{args.name.replace('-', '_')}"
    print(f"{args.name} is in {folder} (every file's SHA-256 verified); from Python: "
          f"xb.data.{loader}({str(folder)!r})")
    return 0


def _list() -> None:
    home = files.data_home()
    print(f"downloaded to {home} (${files.DATA_ENV_VAR} to change):")
    width = max(map(len, [*remote.REMOTE_SETS, *SHIPPED]))
    for name, source in remote.REMOTE_SETS.items():
        folder = source.folder()
        present = sum((folder / f.name).is_file() for f in source.files)
        status = (f"{present} of {len(source.files)} files in {folder}" if present
                  else f"not downloaded: xbackprop data download {name}")
        print(f"  {name:{width}s}  {status}\n  {'':{width}s}  {source.description}")
    print("shipped with xbackprop:")
    for name, description in SHIPPED.items():
        print(f"  {name:{width}s}  {description}")
