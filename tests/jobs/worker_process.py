"""A worker in a process of its own, for tests that kill workers or run several.

    python -m tests.jobs.worker_process DATABASE_URL INSTANCE_DIR --name w1 --lease 2 --concurrency 2

It builds the app with the test suite's settings, registers the ``test.*``
handlers and runs until SIGTERM (or until killed).
"""

from __future__ import annotations

import argparse
import signal


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("instance_dir")
    parser.add_argument("--name", required=True)
    parser.add_argument("--lease", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)

    from portal import create_app
    from portal.jobs.worker import Worker
    from tests.conftest import make_settings
    from tests.jobs import handlers  # noqa: F401  (registers the test.* kinds)

    app = create_app(make_settings(args.database_url, "file"),
                     environ={"PORTAL_TEST_INSTANCE_PATH": args.instance_dir})
    worker = Worker(app, concurrency=args.concurrency, lease_seconds=args.lease,
                    poll_seconds=0.05, name=args.name)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    worker.run_forever()


if __name__ == "__main__":
    main()
