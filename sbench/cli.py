"""Placeholder replaced by the config helper."""
def main() -> int:
    return 0
