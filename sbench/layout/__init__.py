"""Where a run's objects live, as pure rules with no I/O: object and PUT key names (naming), the directory
tree's shape and numbering (tree), and op paths, pools and key joins (paths).

The config layer validates against these rules, the engine and the Ray stages create, find and delete
objects by them, and `--dry-run` prints what they produce; so all of them sit below config and engine.
"""
