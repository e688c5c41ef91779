"""The centre's WeChat official account (公众号, SPEC H5): followers reach the queue here.

* :mod:`~central.wechat.settings`: the ``[wechat]`` section;
* :mod:`~central.wechat.endpoint`: ``GET/POST /api/wechat``, WeChat's message URL (signature,
  timestamp and replay checks, safe-mode AES, passive replies within 5 s);
* :mod:`~central.wechat.dialogue`: the conversation (location → branches → business →
  book or remote ticket → phone + SMS code binds the follower; menu clicks);
* :mod:`~central.wechat.api`: the WeChat API client (access token, template and
  customer-service messages);
* :mod:`~central.wechat.notify`: :class:`~central.wechat.notify.WeChatNotifier`, the
  WeChat channel of :mod:`central.notify`.

The protocol itself (signatures, AES, XML) is :mod:`protocols.wechat`; the simulated WeChat
is ``sim/wechat.py``. See docs/integrations.md, "WeChat official account".
"""
