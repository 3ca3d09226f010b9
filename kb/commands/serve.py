"""`kb serve`: browse the knowledge tree in a web browser, or write it out as a static site."""

from __future__ import annotations

import sys
import threading
import webbrowser
from pathlib import Path

import typer

from kb.commands.common import WorkspaceOption, console, err_console, print_json, workspace_from
from kb.errors import KbError


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        port: int = typer.Option(8765, "--port", "-p", min=0, max=65535, help="Port to listen on (0: any free port)."),
        host: str = typer.Option(
            "127.0.0.1", "--host", help="Address to bind. The default is this machine only; 0.0.0.0 shares it on the network."
        ),
        open_browser: bool = typer.Option(False, "--open", help="Open the home page in the default web browser."),
        build: Path | None = typer.Option(
            None, "--build", metavar="OUT", help="Write the pages as a static site into OUT and exit: an empty folder, "
            "or one an earlier --build wrote, inside the workspace or anywhere else (not the workspace's own folders)."
        ),
        log: bool = typer.Option(False, "--log", help="Print one line per request on stderr."),
        as_json: bool = typer.Option(False, "--json", help="Print the URL (or what --build wrote) as JSON."),
        workspace: Path | None = WorkspaceOption,
    ) -> None:
        """Serve the knowledge tree as web pages: INDEX.md, every knowledge file, snippet results, plans, search."""
        from kb.serve import Site, build_site, make_server
        from kb.serve.layout import SiteLayout

        ws = workspace_from(workspace)
        site = Site(ws.root, layout=SiteLayout.of(ws))
        if build is not None:
            result = build_site(site, build if build.is_absolute() else Path.cwd() / build, protected=ws.layout_folders())
            if as_json:
                print_json({"out": str(result.out), "pages": len(result.pages), "unchanged": result.unchanged,
                            "removed": result.removed, "skipped": result.skipped})
            else:
                console().print(
                    f"Wrote {len(result.pages)} files to {result.out}"
                    + (f" ({result.unchanged} unchanged since the last build)" if result.unchanged else "")
                    + (f", removed {len(result.removed)} stale ones" if result.removed else "")
                    + f"; open {result.out / 'index.html'}"
                )
            return
        try:
            server = make_server(site, host, port, log=log)
        except OSError as exc:
            raise KbError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        bound_host, bound_port = server.server_address[:2]
        shown = "127.0.0.1" if bound_host in ("0.0.0.0", "") else bound_host
        url = f"http://{shown}:{bound_port}/"
        if as_json:
            print_json({"url": url, "host": bound_host, "port": bound_port, "workspace": str(ws.root)})
            sys.stdout.flush()
        else:
            out = console()
            out.print(f"Serving {ws.root} at [bold]{url}[/] (Ctrl+C to stop)")
            if bound_host == "0.0.0.0":
                err_console().print("[yellow]note[/]: bound to 0.0.0.0: anyone who can reach this machine can read the pages")
            out.file.flush()
        if open_browser:
            threading.Timer(0.3, webbrowser.open, args=(url,)).start()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
