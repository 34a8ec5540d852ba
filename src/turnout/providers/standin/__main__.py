"""`python -m turnout.providers.standin --port 9100`: a stand-in upstream in its own process."""

from __future__ import annotations

import argparse


def main() -> None:
    import uvicorn

    from ._app import StandInApp

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    uvicorn.run(
        StandInApp(),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
