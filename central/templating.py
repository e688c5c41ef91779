"""The centre's Jinja2 templates (``templates/``): autoescaped, one layout (``base.html``).

Its own module, importing nothing of the centre, so that the staff pages
(:mod:`central.pages`) and the customers' app (:mod:`central.customers`) both render
through it without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

__all__ = ["TEMPLATE_ENV", "customer_shell"]

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                           undefined=StrictUndefined, auto_reload=False,
                           trim_blocks=True, keep_trailing_newline=True)
# ``|tojson`` escapes <, >, & and ' for a <script> element; keep the Chinese readable.
TEMPLATE_ENV.policies["json.dumps_kwargs"] = {"ensure_ascii": False}


def customer_shell() -> str:
    """The customers' app (central/customers.py serves it on every /m, /b and /yy path)."""
    return TEMPLATE_ENV.get_template("customer.html").render(
        title="排队联网 · 网点查询与预约", body_class="")
