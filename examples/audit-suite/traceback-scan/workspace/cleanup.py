"""Removes the temporary files listed in manifest.txt."""


def cleanup(manifest):
    raise NotImplementedError


def main():
    removed = cleanup("manifest.txt")
    print(f"cleanup finished: {removed} file(s) removed")


if __name__ == "__main__":
    main()
