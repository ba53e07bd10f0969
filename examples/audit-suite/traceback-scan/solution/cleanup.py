"""Removes the temporary files listed in manifest.txt."""

import os


def cleanup(manifest):
    with open(manifest) as f:
        paths = [line.strip() for line in f if line.strip()]
    for path in paths:
        os.remove(path)
    return len(paths)


def main():
    removed = cleanup("manifest.txt")
    print(f"cleanup finished: {removed} file(s) removed")


if __name__ == "__main__":
    main()
