"""Which devices and links a box runs, from its configuration.

Each driver or link family adds its components here; the supervisor runs them.
"""

from __future__ import annotations

from pathlib import Path

from drivers.card_reader import CardReader
from drivers.gpio import GpioPanel
from drivers.lobby import build_lobby_devices
from drivers.printer import printer_component
from drivers.rs485.component import rs485_components

from .appointments import build_appointments
from .config import Config, section
from .kiosk import KioskRelay
from .supervisor import Component
from .update import update_component
from .watchdog import Watchdog
from .web.settings import web_settings

__all__ = ["build_components"]


def build_components(config: Config, data_dir: Path) -> list[Component]:
    components: list[Component] = []
    web_settings(config)  # the screens' [web] section: a mistake stops the start (exit 2)
    if (printer := printer_component(config, data_dir)) is not None:
        components.append(printer)
    lobby = build_lobby_devices(config, data_dir)  # voice, hall display, cards, GPIO
    components += lobby
    # what a card swipe or a ticket button did is shown on the kiosk page (docs/screens.md)
    outcomes = [d.listeners for d in lobby if isinstance(d, CardReader | GpioPanel)]
    if outcomes:
        components.append(KioskRelay(outcomes))
    components.extend(rs485_components(config, data_dir))  # keypads, displays, evaluators
    if (updater := update_component(config, data_dir)) is not None:
        components.append(updater)  # software updates from the centre (F4)
    if config.uplink:  # the link to the centre (docs/uplink.md)
        from .uplink import Uplink, UplinkSettings
        from .uplink.media import store_media

        uplink = Uplink(section(config, "uplink", UplinkSettings))
        uplink.register_command("media", store_media)  # kiosk media from the centre
        if updater is not None:
            uplink.use_updater(updater)  # cmd/update in, its reports out on reply
        components.append(uplink)
    components += build_appointments(config, data_dir, components)  # docs/appointments.md
    components.append(Watchdog())  # sd_notify READY/WATCHDOG under systemd; else ends at once
    return components
