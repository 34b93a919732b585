"""Bot API methods of the Telegram Bot API double: parameter decoding and one handler per method.

python-telegram-bot sends every parameter form-urlencoded, each value either a plain string or JSON (numbers,
booleans, and nested objects such as `entities`, `reply_markup`, `reply_parameters`, `allowed_updates`); other
clients send a JSON body or a query string. `decode_params` turns all of them into the same typed dict, the way the
real server accepts all of them. The handlers then apply Telegram's rules in Telegram's words.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Callable
from typing import Any

from tests.doubles import telegram_markup
from tests.doubles.telegram_files import Files, SentPhoto, check_photo
from tests.doubles.telegram_text import (
    MAX_TEXT_UNITS,
    EntityError,
    describe_entity_error,
    trim,
    utf16_len,
    validate_entities,
)
from tests.doubles.telegram_updates import UpdateHub
from tests.doubles.telegram_world import (
    ApiError,
    Chat,
    ChatAction,
    Draft,
    StoredMessage,
    World,
    bad_request,
)

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a current "
    "content and reply markup of the message"
)
_INT_PARAMS = frozenset(
    {
        "message_id",
        "message_thread_id",
        "draft_id",
        "offset",
        "limit",
        "reply_to_message_id",
        "max_connections",
        "cache_time",
        "user_id",
        "direct_messages_topic_id",
    }
)
_FLOAT_PARAMS = frozenset({"timeout"})
_BOOL_PARAMS = frozenset(
    {
        "drop_pending_updates",
        "show_alert",
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "allow_paid_broadcast",
    }
)
_STRICT_BOOL_PARAMS = frozenset({"can_stop", "keep_on_stop"})
"""Bot API 10.3's draft flags; anything but a Boolean is refused (the double is strict where it can be)."""
_JSON_PARAMS = {
    "entities": "can't parse entities JSON object",
    "caption_entities": "can't parse entities JSON object",
    "reply_markup": "can't parse reply keyboard markup JSON object",
    "reply_parameters": "can't parse reply parameters JSON object",
    "link_preview_options": "can't parse link preview options JSON object",
    "allowed_updates": "can't parse allowed updates JSON object",
    "commands": "can't parse commands JSON object",
    "scope": "can't parse BotCommandScope JSON object",
}
_PARSE_MODES = frozenset({"html", "markdown", "markdownv2"})
_BUTTON_ACTIONS = frozenset(
    {
        "callback_data",
        "url",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "callback_game",
        "pay",
        "web_app",
        "copy_text",
    }
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


def decode_params(raw: dict[str, Any]) -> dict[str, Any]:
    """Give each known parameter its type, whether it came as a form string or as JSON.

    Raises:
        ApiError: 400 for a value that is not a number, boolean or JSON where one is required.
    """
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "chat_id" and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        elif name in _INT_PARAMS and isinstance(value, str):
            if not re.fullmatch(r"-?\d+", value.strip()):
                raise bad_request(f"invalid {name} specified")
            value = int(value)
        elif name in _FLOAT_PARAMS and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise bad_request(f"invalid {name} specified") from None
        elif name in _BOOL_PARAMS and isinstance(value, str):
            value = value.strip().lower() in ("true", "1")
        elif name in _STRICT_BOOL_PARAMS:
            value = _strict_bool(name, value)
        elif name in _JSON_PARAMS and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise bad_request(_JSON_PARAMS[name]) from None
        params[name] = value
    return params


def _strict_bool(name: str, value: Any) -> bool:
    """A Boolean sent as JSON (`true`/`false`, which is how form-encoded clients send it) or as a JSON body's bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip() in ("true", "false"):
        return value.strip() == "true"
    raise bad_request(f"{name} must be a Boolean")


def _inline(markup: dict[str, Any] | None) -> list[Any] | None:
    """The part of a reply markup a message keeps: its inline keyboard (an empty one is none)."""
    return (markup or {}).get("inline_keyboard") or None


class BotApi:
    """The methods. `handlers` maps lower-case method names to (canonical name, handler)."""

    def __init__(self, world: World, hub: UpdateHub, clock: Callable[[], float], *, real_entity_errors: bool) -> None:
        self.world = world
        self.hub = hub
        self.clock = clock
        self.real_entity_errors = real_entity_errors
        self.files = Files()
        table: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getMe": self.get_me,
            "logOut": lambda p: True,
            "close": lambda p: True,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "sendMessage": self.send_message,
            "editMessageText": self.edit_message_text,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "deleteMessage": self.delete_message,
            "sendMessageDraft": self.send_message_draft,
            "sendChatAction": self.send_chat_action,
            "answerCallbackQuery": self.answer_callback_query,
            "getChatAdministrators": self.get_chat_administrators,
            "getFile": self.files.get_file,
            "sendPhoto": self.send_photo,
            "getUpdates": hub.get_updates,
            "setWebhook": hub.set_webhook,
            "deleteWebhook": hub.delete_webhook,
            "getWebhookInfo": lambda p: hub.webhook_info(),
        }
        self.handlers = {name.lower(): (name, handler) for name, handler in table.items()}

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """Run the handler for `method` (lower-case); it raises `ApiError` for an error answer."""
        result = self.handlers[method][1](params)
        return await result if inspect.isawaitable(result) else result

    # -- shared rules -------------------------------------------------------------------------------------------

    def _formatted(self, params: dict[str, Any], *, allow_empty: bool = False) -> tuple[str, list[dict[str, Any]]]:
        """The text and entities as Telegram stores them: entities or parse_mode applied, then trimmed and checked.

        Explicit `entities` win over `parse_mode` (Telegram ignores the mode then). Limits apply after parsing.
        """
        raw = params.get("text")
        raw = "" if raw is None else str(raw)
        parse_mode = params.get("parse_mode")
        if "entities" not in params and parse_mode and str(parse_mode).lower() not in _PARSE_MODES:
            raise bad_request("unsupported parse_mode")
        try:
            if "entities" in params:
                entities = validate_entities(raw, params["entities"])
            elif parse_mode:
                raw, entities = telegram_markup.parse(str(parse_mode), raw)
            else:
                entities = []
        except EntityError as error:
            raise ApiError(400, describe_entity_error(error, real_wording=self.real_entity_errors)) from None
        text, entities = trim(raw, entities)
        if not text and not allow_empty:
            raise bad_request("message text is empty")
        if utf16_len(text) > MAX_TEXT_UNITS:
            raise bad_request("message is too long")
        return text, entities

    def _reply_target(self, chat_id: int, params: dict[str, Any]) -> StoredMessage | None:
        """The message replied to, from `reply_parameters` or the older `reply_to_message_id`."""
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {"message_id": params["reply_to_message_id"]}
            reply["allow_sending_without_reply"] = params.get("allow_sending_without_reply", False)
        if reply is None:
            return None
        if not isinstance(reply, dict) or "message_id" not in reply:
            raise bad_request(_JSON_PARAMS["reply_parameters"])
        target = self.world.live_message(chat_id, reply["message_id"])
        if target is None and not reply.get("allow_sending_without_reply"):
            raise bad_request("message to be replied not found")
        return target

    def _placement(self, chat: Chat, params: dict[str, Any]) -> tuple[StoredMessage | None, int | None]:
        """The message a new message replies to and its topic. In a forum, a message in a topic replies
        (implicitly) to the topic's creation message; a reply lands in the topic of what it replies to."""
        reply_to = self._reply_target(chat.id, params)
        thread = params.get("message_thread_id")
        if not chat.is_forum:
            return reply_to, thread
        if thread is None and reply_to is not None:
            thread = reply_to.message_thread_id
        if thread is not None and thread not in chat.topics:
            raise bad_request("message thread not found")
        root = self.world.message(chat.id, thread) if thread is not None else None
        return reply_to or root, thread

    def _markup(self, markup: Any) -> dict[str, Any] | None:
        """Check a `reply_markup`; inline keyboards strictly (button text, one action, callback_data ≤ 64 bytes)."""
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request(_JSON_PARAMS["reply_markup"])
        if "inline_keyboard" not in markup:
            if not any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
                raise bad_request(_JSON_PARAMS["reply_markup"])
            return markup
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request('can\'t parse inline keyboard button: Field "inline_keyboard" must be of type Array')
        for button in (button for row in rows for button in row):
            if not isinstance(button, dict):
                raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            if not button.get("text"):
                raise bad_request("can't parse inline keyboard button: Can't find field \"text\"")
            if not _BUTTON_ACTIONS & button.keys():
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            data = button.get("callback_data")
            if "callback_data" in button and (not isinstance(data, str) or not 1 <= len(data.encode()) <= 64):
                raise bad_request("BUTTON_DATA_INVALID")
            if "url" in button and not re.match(r"(https?|tg)://\S+$", str(button["url"])):
                raise bad_request("BUTTON_URL_INVALID")
        return markup if rows else None

    def _own_message(self, params: dict[str, Any]) -> StoredMessage:
        """The bot's message that an edit names, or Telegram's refusal."""
        if params.get("inline_message_id"):
            raise bad_request("inline messages are not supported by the TelegramDouble")
        chat = self.world.find_chat(params.get("chat_id"))
        if params.get("message_id") is None:
            raise bad_request("message identifier is not specified")
        message = self.world.live_message(chat.id, params["message_id"])
        if message is None:
            raise bad_request("message to edit not found")
        if not message.by_bot:
            raise bad_request("message can't be edited")
        return message

    def _edited(self, message: StoredMessage) -> dict[str, Any]:
        message.edit_count += 1
        message.edit_date = max(message.date, int(time.time()))
        message.history.append(message.text)
        return message.to_api()

    # -- methods ------------------------------------------------------------------------------------------------

    def get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        """getMe: the bot user plus the bot-only flags."""
        return {
            **self.world.bot.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        """sendMessage."""
        chat = self.world.find_chat(params.get("chat_id"))
        text, entities = self._formatted(params)
        message = self._post(
            chat,
            params,
            text=text,
            entities=entities,
            reply_markup=self._markup(params.get("reply_markup")),
            link_preview_options=params.get("link_preview_options"),
        )
        return message.to_api()

    def send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        """sendPhoto: an uploaded image (see telegram_files) with an optional plain caption."""
        chat = self.world.find_chat(params.get("chat_id"))
        data, caption = check_photo(params)
        message = self._post(chat, params, caption=caption, photo=True)
        self.files.sent_photos.append(SentPhoto(chat.id, message.message_id, data, caption))
        return message.to_api()

    def _post(self, chat: Chat, params: dict[str, Any], **fields: Any) -> StoredMessage:
        """A new message by the bot, placed as `_placement` says; it replaces any draft shown in the chat."""
        reply_to, thread = self._placement(chat, params)
        message = self.world.add_message(
            chat,
            self.world.bot,
            by_bot=True,
            reply_to=reply_to,
            message_thread_id=thread,
            is_topic_message=chat.is_forum and thread is not None,
            **fields,
        )
        self.world.dismiss_drafts(chat.id, self.clock())
        return message

    def edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        """editMessageText. Leaving out `reply_markup` removes an inline keyboard, as on the real server."""
        text, entities = self._formatted(params)
        markup = self._markup(params.get("reply_markup"))
        message = self._own_message(params)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        if (text, entities, _inline(markup)) == (message.text, message.entities, _inline(message.reply_markup)):
            raise bad_request(NOT_MODIFIED)
        message.text, message.entities, message.reply_markup = text, entities, markup
        if params.get("link_preview_options") is not None:
            message.link_preview_options = params["link_preview_options"]
        return self._edited(message)

    def edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        """editMessageReplyMarkup; the same keyboard again is "not modified"."""
        markup = self._markup(params.get("reply_markup"))
        message = self._own_message(params)
        if _inline(markup) == _inline(message.reply_markup):
            raise bad_request(NOT_MODIFIED)
        message.reply_markup = markup
        return self._edited(message)

    def delete_message(self, params: dict[str, Any]) -> bool:
        """deleteMessage: own messages anywhere, others' in private chats or where the bot is an admin."""
        chat = self.world.find_chat(params.get("chat_id"))
        message = self.world.live_message(chat.id, params.get("message_id"))
        if message is None:
            raise bad_request("message to delete not found")
        if not (message.by_bot or chat.is_private or chat.bot_is_admin):
            raise bad_request("message can't be deleted")
        message.deleted = True
        return True

    def send_message_draft(self, params: dict[str, Any]) -> bool:
        """sendMessageDraft: private chats only, non-zero draft_id; empty text is the "Thinking..." placeholder.

        A draft with the id of the one shown animates it; one with another id replaces it, without animation (the
        Bot API's words), so a chat (or topic) shows at most one draft.

        Bot API 10.3: `can_stop` shows the user a stop button (`Scene.stop_draft` presses it), `keep_on_stop` keeps
        the draft visible after the press. Once stopped, later drafts with that id are accepted and not shown
        (guessed: Telegram documents no error for them).
        """
        chat = self.world.find_chat(params.get("chat_id"))
        if not chat.is_private:
            raise bad_request("TEXTDRAFT_PEER_INVALID")
        draft_id = params.get("draft_id")
        if not draft_id:
            raise bad_request("draft_id must be non-zero")
        text, entities = self._formatted(params, allow_empty=True)
        now = self.clock()
        if self.world.stopped_draft(chat.id, draft_id) is not None:
            return True
        draft = self.world.current_draft(chat.id, draft_id, now)
        if draft is None:
            thread = params.get("message_thread_id")
            draft = Draft(chat.id, draft_id, text, entities, thread, now, now)
            self.world.replace_draft(chat.id, thread, now)
            self.world.drafts.append(draft)
        draft.text, draft.entities, draft.updated_at = text, entities, now
        draft.can_stop = params.get("can_stop", False)
        draft.keep_on_stop = params.get("keep_on_stop", False)
        draft.history.append(text)
        return True

    def send_chat_action(self, params: dict[str, Any]) -> bool:
        """sendChatAction ("typing" shows for at most 5 s or until the next message)."""
        chat = self.world.find_chat(params.get("chat_id"))
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        action = ChatAction(self.clock(), chat.id, params["action"], params.get("message_thread_id"))
        self.world.chat_actions.append(action)
        return True

    def answer_callback_query(self, params: dict[str, Any]) -> bool:
        """answerCallbackQuery: once per query."""
        query = self.world.callback_queries.get(str(params.get("callback_query_id")))
        if query is None or query.answered:
            raise bad_request("query is too old and response timeout expired or query ID is invalid")
        query.answered = True
        query.answer = {key: params[key] for key in ("text", "show_alert", "url", "cache_time") if key in params}
        return True

    def get_chat_administrators(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """getChatAdministrators: the group's administrators (never other bots but this one, as in Telegram)."""
        chat = self.world.find_chat(params.get("chat_id"))
        if chat.is_private:
            raise bad_request("there are no administrators in the private chat")
        admins = [self.world.users[user] for user in sorted(chat.admins)]
        if chat.bot_is_admin:
            admins.append(self.world.bot)
        return [_administrator(user) for user in admins]

    @staticmethod
    def commands_key(params: dict[str, Any]) -> tuple[str, str]:
        """Command lists are kept per (scope, language_code); a missing scope is the default scope."""
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def set_my_commands(self, params: dict[str, Any]) -> bool:
        """setMyCommands: 1-32 of a-z, 0-9 and _ per command, a 1-256 character description, at most 100."""
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request('parameter "commands" is required')
        if len(commands) > 100:
            raise bad_request("too many commands")
        stored = []
        for command in commands:
            if not isinstance(command, dict) or not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command"))):
                raise bad_request("BOT_COMMAND_INVALID")
            description = str(command.get("description") or "").strip()
            if not 1 <= len(description) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            stored.append({"command": command["command"], "description": description})
        self.world.commands[self.commands_key(params)] = stored
        return True

    def get_my_commands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        """getMyCommands for exactly the scope and language given."""
        return self.world.commands.get(self.commands_key(params), [])

    def delete_my_commands(self, params: dict[str, Any]) -> bool:
        """deleteMyCommands."""
        self.world.commands.pop(self.commands_key(params), None)
        return True


def _administrator(user: Any) -> dict[str, Any]:
    """A `ChatMemberAdministrator` with the rights an ordinary group admin has."""
    rights = ("can_manage_chat", "can_delete_messages", "can_restrict_members", "can_invite_users", "can_pin_messages")
    member: dict[str, Any] = {"status": "administrator", "user": user.to_api(), "can_be_edited": False}
    member |= {
        name: name in rights
        for name in (
            "is_anonymous",
            "can_manage_chat",
            "can_delete_messages",
            "can_manage_video_chats",
            "can_restrict_members",
            "can_promote_members",
            "can_change_info",
            "can_invite_users",
            "can_post_stories",
            "can_edit_stories",
            "can_delete_stories",
            "can_pin_messages",
        )
    }
    return member
