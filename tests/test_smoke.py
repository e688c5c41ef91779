from controller.box import Box
from controller.engine import IssueTicket


async def test_a_ticket_is_issued(box: Box) -> None:
    events = await box.execute(IssueTicket(queue="A"))
    assert events[-1]["number"] == "A001"
