"""Pins a requirements file with hashes for `pip install --require-hashes`.

    python3 python/pin.py TOP_LEVEL_REQUIREMENTS > pinned.txt

Installs the top-level requirements into a throwaway virtual environment, freezes what pip resolved, downloads those
exact files for this machine (CPython 3.11, Linux x86_64, the one platform our machines run) and writes each as
`name==version --hash=sha256:…`. A changed upload of a pinned version then fails the install instead of slipping in.
"""
import hashlib
import pathlib
import re
import subprocess
import sys
import tempfile
import venv


def main() -> None:
    top = pathlib.Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        env = pathlib.Path(tmp, "env")
        venv.create(env, with_pip=True)
        pip = [str(env / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "install", "-r", str(top)], check=True)
        frozen = subprocess.run([*pip, "freeze", "--all", "--exclude", "pip", "--exclude", "setuptools"], check=True, capture_output=True, text=True).stdout
        pins = [line for line in frozen.splitlines() if "==" in line]
        req = pathlib.Path(tmp, "frozen.txt")
        req.write_text("\n".join(pins) + "\n")
        dl = pathlib.Path(tmp, "dl")
        subprocess.run([*pip, "download", "--no-deps", "-d", str(dl), "-r", str(req)], check=True)
        files = {canonical(f.name): f for f in dl.iterdir()}
        print(f"# Pinned by python/pin.py from {top.name}; do not edit by hand.")
        for pin in sorted(pins, key=str.lower):
            name, version = pin.split("==")
            f = files[canonical(f"{name}-{version}")]
            digest = hashlib.sha256(f.read_bytes()).hexdigest()
            print(f"{name}=={version} --hash=sha256:{digest}")


def canonical(filename: str) -> str:
    """`Foo_Bar-1.0-py3-none-any.whl` and `foo-bar==1.0` → `foo_bar-1.0`."""
    m = re.match(r"^([A-Za-z0-9_.\-]+?)-(\d[^-]*?)(?:-|\.tar\.gz$|\.zip$|$)", filename)
    if not m:
        return filename.lower()
    return f"{re.sub(r'[-_.]+', '_', m.group(1)).lower()}-{m.group(2)}"


if __name__ == "__main__":
    main()
