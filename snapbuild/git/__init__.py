"""Git plumbing over dulwich: loose objects in and out, revisions, the store and its lock, push and gc.

Nothing here knows what a snapshot is; ``snapbuild.snapshots`` gives the
trees and refs their meaning. Inside the package, ``objects`` and
``revisions`` are the bottom, ``store`` builds on both, and ``remote`` on
``store``; outside it, only ``errors`` and ``fsutil`` are used.
"""
