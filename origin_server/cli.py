"""The ``origin-server`` command line: parse, call one core function, render.

Every :class:`~origin_server.errors.OriginError` becomes one line on stderr
here, in :func:`main`, which also puts the flag's name in front of a refused
setting or argument: a bad argument is a usage error (exit 2, like click's
own), anything else operational (exit 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .config import DEFAULT_CONNECTION_LIMIT, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_TOKEN_LIFETIME, MAX_CONNECTION_LIMIT
from .errors import ArgumentError, OriginError, SettingError

#: Settings and arguments the core names in its errors -> the flags that give them.
FLAGS = {
    "media_root": "--media-root",
    "threads": "--threads",
    "connection_limit": "--connection-limit",
    "header_timeout": "--header-timeout",
    "trusted_proxy": "--trusted-proxy",
    # The token command checks --locator and --backend together.
    "locator": "--locator/--backend",
    "backend": "--locator/--backend",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="snapbuild")
def cli() -> None:
    """Serve NAS-only audio through signed, expiring tokens, and mint those tokens."""


# One definition for both commands: serve and token read the same key file.
secret_file_option = click.option(
    "--secret-file",
    envvar="ORIGIN_SECRET_FILE",
    required=True,
    type=click.Path(path_type=Path, dir_okay=True),
    help="Key file (KID:SECRET per line, first line signs). Env: ORIGIN_SECRET_FILE.",
)


@cli.command()
@click.option(
    "--media-root",
    "media_roots",
    multiple=True,
    required=True,
    metavar="[NAME=]PATH",
    help="A media root; NAME is the storage backend a token's 'backend' claim names (repeatable).",
)
@secret_file_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free port).")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256), help="Worker threads.")
@click.option(
    "--connection-limit",
    default=None,
    show_default=f"{DEFAULT_CONNECTION_LIMIT}, or what the open-file limit allows",
    type=click.IntRange(1, MAX_CONNECTION_LIMIT),
    help="Open connections at most (on Windows below select()'s ceiling of 512).",
)
@click.option(
    "--header-timeout",
    default=DEFAULT_HEADER_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0, 3600, min_open=True),
    help="Seconds a client has to send a complete request; slower ones are disconnected.",
)
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="URL", help="Origin allowed by CORS (repeatable).")
@click.option("--trusted-proxy", metavar="ADDR", help="Reverse proxy whose X-Forwarded-For is believed.")
@click.option("--offload", type=click.Choice(["nginx"]), help="Answer with X-Accel-Redirect; nginx sends the bytes.")
@click.option("--offload-prefix", default="/_protected", show_default=True, help="nginx internal location for --offload.")
@click.option("--max-age", default=3600, show_default=True, type=click.IntRange(0), help="Cache-Control max-age cap (s).")
@click.option("--leeway", default=30, show_default=True, type=click.IntRange(0, 3600), help="Clock skew allowed (s).")
@click.option(
    "--catalog",
    "catalog_dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Serve only files the newest snapshot in DIR (catalog_read.db + manifest.json) lists as active; "
    "others answer 410. Every --media-root then needs a NAME.",
)
@click.option(
    "--max-token-lifetime",
    default=DEFAULT_MAX_TOKEN_LIFETIME,
    show_default=True,
    type=click.IntRange(0),
    help="Refuse tokens whose exp lies further ahead than this (s; 0: no cap) as invalid_token.",
)
@click.option(
    "--healthz-details",
    is_flag=True,
    help="/healthz also names the backends and counts the keys (off: only the status, for anyone to see).",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One stderr line per request (a proxy in front may log instead).",
)
def serve(
    media_roots: tuple[str, ...],
    secret_file: Path,
    host: str,
    port: int,
    threads: int,
    connection_limit: int | None,
    header_timeout: float,
    cors_origins: tuple[str, ...],
    trusted_proxy: str | None,
    offload: str | None,
    offload_prefix: str,
    max_age: int,
    leeway: int,
    catalog_dir: Path | None,
    max_token_lifetime: int,
    healthz_details: bool,
    access_log: bool,
) -> None:
    """Stream media files to players that present a valid token (waitress, no TLS).

    GET|HEAD /api/private-origin/stream/TOKEN serves the file the token names
    (Range, ETag, 304); GET /healthz reports readiness. See docs/origin.md.

    With --catalog DIR, a valid token is not enough: its file must be an
    active file of its backend in the snapshot published in DIR (an export's
    target directory or a clone of the snapshot repository); a new snapshot
    takes effect within seconds, without a restart.

    \b
    Example:
        origin-server serve --media-root music=D:\\Music \\
            --secret-file origin.keys --port 8080
        origin-server serve --media-root nas-main=/srv/music \\
            --secret-file origin.keys --catalog /srv/catalog
    """
    import signal
    import time

    from .app import create_app
    from .catalog import Catalog
    from .config import OriginConfig, check_roots, parse_media_roots
    from .keys import read_key_file
    from .server import configure_logging, default_connection_limit, listening, make_server

    if connection_limit is None:
        connection_limit = default_connection_limit()
        if connection_limit < DEFAULT_CONNECTION_LIMIT:
            _warn(f"the open-file limit allows {connection_limit} connections, not {DEFAULT_CONNECTION_LIMIT} "
                  "(raise it with ulimit -n, or give --connection-limit)")

    roots = parse_media_roots(media_roots)
    keys = read_key_file(secret_file, warn=_warn)
    access_line = configure_logging(access_log=access_log)  # first: the catalog's load logs its warnings
    catalog = Catalog(catalog_dir, roots) if catalog_dir is not None else None
    config = OriginConfig(
        roots=check_roots(roots),
        keys=keys,
        clock=time.time,
        leeway=leeway,
        cors_origins=cors_origins,
        offload=offload,
        offload_prefix=offload_prefix,
        max_age=max_age,
        catalog=catalog,
        max_token_lifetime=max_token_lifetime,
        health_details=healthz_details,
    )
    server = make_server(
        create_app(config, access_line=access_line),
        host=host,
        port=port,
        threads=threads,
        connection_limit=connection_limit,
        header_timeout=header_timeout,
        trusted_proxy=trusted_proxy,
    )
    mode = (", offload nginx" if offload else "") + (f", catalog {catalog.snapshot_id}" if catalog else "")
    urls = " and ".join(f"http://{f'[{at}]' if ':' in at else at}:{port}" for at, port in listening(server))
    click.echo(f"origin-server: serving on {urls} ({len(roots)} media root(s), {len(keys)} key(s){mode})")
    sys.stdout.flush()
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM (service managers, `kill`) stops like Ctrl-C: the server closes
    # and logging writes its last lines at exit.
    signal.signal(signal.SIGTERM, stop)
    if catalog is not None:
        catalog.start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        if catalog is not None:
            catalog.close()


@cli.command()
@secret_file_option
@click.option("--locator", required=True, help="The file's storage key, relative to its media root.")
@click.option(
    "--backend",
    help="Storage backend naming the media root (the 'backend' claim). Default: none, and the token is "
    "served from the server's unnamed root (--media-root PATH without NAME=); a server whose roots all "
    "have names answers it 404.",
)
@click.option("--ttl", default=3600, show_default=True, type=click.IntRange(1), help="Shortest lifetime (s).")
@click.option(
    "--round",
    "round_to",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Round the expiry up to a multiple of this many seconds, so re-minted URLs repeat (0: whole seconds).",
)
@click.option("--base-url", metavar="URL", help="Print the full stream URL under this origin instead of the token.")
def token(secret_file: Path, locator: str, backend: str | None, ttl: int, round_to: int, base_url: str | None) -> None:
    """Mint a token (or stream URL) for one file, signed with the key file's first key.

    Without --backend the token names no backend: the server serves it from
    its unnamed media root. A server refuses tokens living longer than its
    --max-token-lifetime (7 days unless set).

    \b
    Example:
        origin-server token --secret-file origin.keys --locator "netease/马也/海屿你.flac" --base-url http://nas:8080
        ORIGIN_SECRET_FILE=origin.keys origin-server token --locator "a/b.flac" --ttl 7200 --round 600
    """
    import time

    from .keys import read_key_file
    from .tokens import create_origin_token, expires_at, stream_url

    keys = read_key_file(secret_file, warn=_warn)
    now = time.time()
    exp = expires_at(now, ttl, round_to=round_to)
    if exp - now > DEFAULT_MAX_TOKEN_LIFETIME:
        _warn(
            f"this token lives longer than {DEFAULT_MAX_TOKEN_LIFETIME // 86400} days; "
            "servers refuse it unless started with a larger --max-token-lifetime"
        )
    minted = create_origin_token(keys, locator, exp, backend=backend)
    click.echo(stream_url(base_url, minted) if base_url else minted)


def _warn(message: str) -> None:
    """One warning line on stderr."""
    click.echo(f"origin-server: warning: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn origin_server's errors into one stderr line and an exit code."""
    try:
        cli.main(args=argv, prog_name="origin-server", standalone_mode=False)
    except ArgumentError as error:  # a value from the command line that the core refuses
        flag = FLAGS.get(error.argument, error.argument)
        click.echo(f"origin-server: error: Invalid value for {flag}: {error}", err=True)
        return 2
    except SettingError as error:
        flag = FLAGS.get(error.setting)
        click.echo(f"origin-server: error: {f'{flag} {error.reason}' if flag else error}", err=True)
        return 1
    except OriginError as error:
        click.echo(f"origin-server: error: {error}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("origin-server: aborted", err=True)
        return 130
    except click.ClickException as error:
        click.echo(f"origin-server: error: {error.format_message()}", err=True)
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
