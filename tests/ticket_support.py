"""A ticket to print and its expected bytes: shared by the ticket and printer tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import at


def ticket(**changes: Any) -> dict[str, Any]:
    info = {
        "id": "20261125-A023", "number": "A023", "queue": "A", "queue_name": "个人业务",
        "queue_name_en": "Personal banking", "branch_code": "1001010001",
        "branch_name": "郑州金水路支行", "branch_name_en": "Zhengzhou Jinshui Road Sub-branch",
        "issued_at": at(10, 5), "timezone": "Asia/Shanghai", "ahead": 7, "notice": "",
        "notice_en": "", "customer_type": "normal", "stars": 0, "vip_name": None,
        "reprint": False,
    }
    return {**info, **changes}


T_TICKET = ticket(id="20261125-T0001", number="T0001", queue="T", queue_name="挂失改密",
                  queue_name_en="Lost card / password reset", ahead=0,
                  notice="该叫号纸只能办理挂失改密业务",
                  notice_en="This ticket is only for reporting a lost card or resetting a password")
