/*! Neo Support chat widget. One script tag:
 *  <script src="https://support.example.com/widget.js" data-bot-key="pk_..." async></script>
 * Its colour, corner and title come from the bot's Theme settings (cached in localStorage,
 * so a reload does not flash the default). Optional, each overriding the theme on this
 * page: data-position (right|left), data-color, data-title; and data-base-url,
 * data-language, data-expiry-days, data-open; data-test-chat on the dashboard's test chat.
 * Protocol: docs/protocol.md (version 1). No dependencies. */
(function () {
  "use strict";
  var PROTOCOL = 1;
  var script = document.currentScript || document.querySelector("script[data-bot-key]");
  if (!script || window.NeoSupport && window.NeoSupport.version) return;
  var data = script.dataset;
  var key = data.botKey || "";
  if (!key) { console.error("Neo Support: the script tag needs data-bot-key."); return; }
  var base = (data.baseUrl || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  // Theme values from the server or the script tag, checked alike: anything else is ignored.
  function validAccent(v) { return typeof v === "string" && /^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(v) ? v : null; }
  function validPosition(v) { return v === "left" || v === "right" ? v : null; }
  function validTitle(v) { return typeof v === "string" && v.trim() ? v.trim().slice(0, 80) : null; }
  var cfg = {
    // The script tag's data-* only override the bot's saved theme.
    override: { accent: validAccent(data.color), position: validPosition(data.position), title: validTitle(data.title) },
    language: data.language || document.documentElement.lang || "en",
    expiryDays: Math.max(1, parseInt(data.expiryDays || "30", 10) || 30),
    testChat: data.testChat !== undefined
  };
  var DEFAULT_THEME = { accent: "#2456d6", position: "right" };
  var THEME_REFRESH_MS = 5 * 60 * 1000; // how stale a cached theme may be before it is asked for again
  var TEXT = {
    en: { title: "Support", placeholder: "Type your question…", send: "Send", stop: "Stop", open: "Open support chat",
      close: "Close chat", newChat: "New chat", human: "Talk to a person", sources: "Sources", helpful: "Helpful",
      unhelpful: "Not helpful", thanks: "Thanks for the feedback.", commentLabel: "What was wrong? (optional)", sendComment: "Send",
      person: "person", agent: "Support team", agentJoined: "{name} joined the chat.", someoneJoined: "A person joined the chat.",
      backToBot: "You are talking to the assistant again.", offline: "Reconnecting…", handedOff: "A person will take over this conversation.", emailUs: "Email us instead",
      yourEmail: "Your email", yourMessage: "Your message", sendEmail: "Send", contactDone: "Thanks! We will answer by email. Your ticket: ",
      typing: "The assistant is typing", error: "Something went wrong.", refused: "This chat is not available on this site." },
    fr: { title: "Assistance", placeholder: "Votre question…", send: "Envoyer", stop: "Arrêter", open: "Ouvrir le chat",
      close: "Fermer", newChat: "Nouvelle conversation", human: "Parler à une personne", sources: "Sources", helpful: "Utile",
      unhelpful: "Pas utile", thanks: "Merci pour votre avis.", commentLabel: "Qu'est-ce qui n'allait pas ? (facultatif)", sendComment: "Envoyer",
      person: "humain", agent: "Équipe d'assistance", agentJoined: "{name} a rejoint la conversation.", someoneJoined: "Une personne a rejoint la conversation.",
      backToBot: "Vous parlez de nouveau avec l'assistant.", offline: "Reconnexion…", handedOff: "Une personne va prendre le relais.", emailUs: "Nous écrire par e-mail",
      yourEmail: "Votre e-mail", yourMessage: "Votre message", sendEmail: "Envoyer", contactDone: "Merci ! Nous répondrons par e-mail. Votre ticket : ",
      typing: "L'assistant écrit", error: "Une erreur est survenue.", refused: "Ce chat n'est pas disponible sur ce site." }
  };
  var t = TEXT[cfg.language.slice(0, 2)] || TEXT.en;

  // Stored state -------------------------------------------------------------------
  // The test chat keeps its own state: the dashboard and the demo page share an origin.
  var STORE = "neo-support:" + (cfg.testChat ? "test:" : "") + key;
  var state = load();
  // `bot` ({name, theme, at}) is the bot's look as last heard; a new chat keeps it.
  function fresh(bot) { return { token: null, lastEventId: null, messages: [], conversationStatus: null, bot: bot || null, savedAt: Date.now() }; }
  function load() {
    try {
      var saved = JSON.parse(localStorage.getItem(STORE) || "null");
      if (saved && Date.now() - saved.savedAt < cfg.expiryDays * 864e5) return saved;
    } catch (e) { /* storage blocked or corrupt: start afresh */ }
    return fresh();
  }
  function save(keepAge) {
    if (!keepAge) state.savedAt = Date.now();
    state.messages = state.messages.slice(-100);
    try { localStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* private mode */ }
  }

  // Host-page API ------------------------------------------------------------------
  var listeners = {};
  function emit(name, detail) {
    (listeners[name] || []).forEach(function (fn) { try { fn(detail); } catch (e) { console.error(e); } });
  }

  // DOM ----------------------------------------------------------------------------
  var host = document.createElement("div");
  host.setAttribute("data-neo-support", "");
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML = "<style>" +
    ":host{all:initial}*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',sans-serif}" +
    ".launcher{position:fixed;bottom:20px;left:var(--l,auto);right:var(--r,20px);width:56px;height:56px;border-radius:50%;border:0;background:var(--c);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000;display:flex;align-items:center;justify-content:center}" +
    ".launcher svg{width:26px;height:26px;fill:currentColor}.badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;border-radius:10px;background:#d93025;color:#fff;font-size:12px;line-height:20px;text-align:center;padding:0 5px}" +
    ".panel{position:fixed;bottom:88px;left:var(--l,auto);right:var(--r,20px);width:380px;max-width:calc(100vw - 40px);height:600px;max-height:calc(100vh - 110px);background:#fff;color:#1b1f24;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden;z-index:2147483001;font-size:15px}" +
    ".panel[hidden]{display:none}header{background:var(--c);color:#fff;padding:12px 14px;display:flex;align-items:center;gap:8px}header h2{font-size:16px;margin:0;flex:1}" +
    "header button{background:transparent;border:1px solid rgba(255,255,255,.5);color:#fff;border-radius:6px;padding:4px 8px;cursor:pointer;font-size:13px}" +
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;background:#f6f7f9}" +
    ".msg{max-width:85%;padding:9px 12px;border-radius:12px;line-height:1.4;white-space:normal;word-wrap:break-word}.msg p{margin:0 0 6px}.msg p:last-child{margin:0}.msg ul,.msg ol{margin:4px 0;padding-left:20px}" +
    ".visitor{align-self:flex-end;background:var(--c);color:#fff;white-space:pre-wrap}.bot,.agent{align-self:flex-start;background:#fff;border:1px solid #e1e4e8}.agent{border-left:3px solid var(--c)}" +
    ".who{font-size:12px;color:#57606a;margin-bottom:3px;display:flex;gap:6px;align-items:center}.who strong{color:#1b1f24}.person{border:1px solid #d0d7de;border-radius:8px;padding:0 6px;font-size:11px}.system{align-self:center;color:#57606a;font-size:13px;text-align:center}" +
    ".msg a{color:inherit}.cite{font-size:11px;vertical-align:super;text-decoration:none;background:#e7ecfb;color:#2456d6;border-radius:4px;padding:0 3px;margin-left:1px}" +
    ".sources{margin-top:6px;font-size:12px;color:#57606a}.sources ol{margin:2px 0;padding-left:18px}.rate{margin-top:6px;display:flex;gap:6px}.rate button{border:1px solid #d0d7de;background:#fff;border-radius:6px;cursor:pointer;padding:2px 8px}.rate button[aria-pressed=true]{background:#e7ecfb}.thanks{margin:4px 0 0;font-size:12px;color:#57606a}" +
    ".comment{display:flex;flex-direction:column;gap:4px;margin-top:6px;padding:0;border:0;background:transparent}.comment label{font-size:12px;color:#57606a}.comment textarea{font-size:13px;max-height:none}.comment button{align-self:flex-end;background:var(--c);color:#fff;border:0;border-radius:6px;padding:3px 10px;cursor:pointer}" +
    ".typing{align-self:flex-start;color:#57606a;font-size:13px}.starters{display:flex;flex-wrap:wrap;gap:6px}.starters button{border:1px solid var(--c);color:var(--c);background:#fff;border-radius:16px;padding:5px 10px;cursor:pointer;font-size:13px}" +
    ".bar{font-size:12px;color:#8a5a00;background:#fff4d6;padding:4px 12px}.bar[hidden]{display:none}form{display:flex;gap:6px;padding:10px;border-top:1px solid #e1e4e8;background:#fff}" +
    "textarea{flex:1;resize:none;border:1px solid #d0d7de;border-radius:8px;padding:8px;font-size:15px;max-height:120px}form button{background:var(--c);color:#fff;border:0;border-radius:8px;padding:0 14px;cursor:pointer}" +
    ".contact{display:flex;flex-direction:column;gap:6px;background:#fff;border:1px solid #e1e4e8;border-radius:10px;padding:10px}.contact input,.contact textarea{border:1px solid #d0d7de;border-radius:6px;padding:6px;font-size:14px}.contact button{align-self:flex-end;background:var(--c);color:#fff;border:0;border-radius:6px;padding:5px 12px;cursor:pointer}.contact .err{color:#b42318;font-size:13px}" +
    ".human{border:0;background:transparent;color:#57606a;font-size:12px;padding:4px 12px 8px;text-align:left;cursor:pointer;text-decoration:underline}" +
    "button:focus-visible,textarea:focus-visible,a:focus-visible{outline:2px solid #ffbf47;outline-offset:2px}.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}" +
    "@media (max-width:640px){.panel{inset:0;width:100%;max-width:none;height:100%;max-height:none;border-radius:0;bottom:0}}" +
    "</style>" +
    "<button class='launcher' type='button' aria-haspopup='dialog' aria-expanded='false'><svg viewBox='0 0 24 24' aria-hidden='true'><path d='M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z'/></svg><span class='badge' hidden></span></button>" +
    "<section class='panel' role='dialog' aria-modal='false' hidden><header><h2></h2><button type='button' class='new'></button><button type='button' class='x'>✕</button></header>" +
    "<div class='bar' role='status' hidden></div><div class='log' role='log' aria-live='polite' aria-relevant='additions text' tabindex='0'></div>" +
    "<div><button type='button' class='human'></button><button type='button' class='human email'></button></div><form><label class='sr' for='neo-q'></label><textarea id='neo-q' rows='1' maxlength='4000'></textarea><button type='submit' class='send'></button></form></section>";
  var $ = function (s) { return root.querySelector(s); };
  var launcher = $(".launcher"), badge = $(".badge"), panel = $(".panel"), log = $(".log"), bar = $(".bar");
  var form = $("form"), input = $("textarea"), sendButton = $(".send"), humanButton = $(".human");
  $(".new").textContent = t.newChat;
  $(".x").setAttribute("aria-label", t.close);
  $(".sr").textContent = t.placeholder;
  launcher.setAttribute("aria-label", t.open);
  input.placeholder = t.placeholder;
  sendButton.textContent = t.send;
  humanButton.textContent = t.human;
  var emailButton = $(".email");
  emailButton.textContent = t.emailUs;

  // Theme: the script tag's overrides, else the bot's saved theme, else the defaults.
  function look() {
    var bot = state.bot || {}, saved = bot.theme || {}, o = cfg.override;
    return {
      accent: o.accent || saved.accent || DEFAULT_THEME.accent,
      position: o.position || saved.position || DEFAULT_THEME.position,
      title: o.title || saved.title || bot.name || t.title
    };
  }
  function applyTheme() {
    var l = look();
    host.style.setProperty("--c", l.accent);
    host.style.setProperty("--l", l.position === "left" ? "20px" : "auto");
    host.style.setProperty("--r", l.position === "left" ? "auto" : "20px");
    host.setAttribute("data-position", l.position);
    $("h2").textContent = l.title;
    panel.setAttribute("aria-label", l.title);
  }
  // The bot as `welcome` describes it: its look is kept for the next page.
  function learnBot(bot) {
    var theme = bot.theme || {};
    state.bot = {
      name: typeof bot.name === "string" ? bot.name.slice(0, 200) : "",
      theme: { accent: validAccent(theme.accent), position: validPosition(theme.position), title: validTitle(theme.title) },
      at: Date.now()
    };
    save(true); applyTheme(); reveal();
  }
  // A first visit knows no theme yet: the launcher waits for it, briefly, rather than flash the default.
  function reveal() { launcher.style.visibility = ""; }
  // Without a socket (the chat not opened yet), a `hello` by POST tells the bot's look; nothing is stored.
  function refreshTheme() {
    fetch(base + "/chat/" + encodeURIComponent(key) + "/frames", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ type: "hello", v: PROTOCOL, visitor_token: null, last_event_id: null, locale: cfg.language }) })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (events) {
        (Array.isArray(events) ? events : []).forEach(function (e) { if (e && e.type === "welcome" && e.bot) learnBot(e.bot); });
      }, function () { /* offline or refused: the chat says so when opened */ })
      .then(reveal);
  }

  // Markdown, built from DOM nodes and text only: nothing the bot says becomes HTML.
  function inline(parent, text, citations) {
    var pattern = /(\*\*([^*]+)\*\*)|(\*([^*]+)\*)|(`([^`]+)`)|(\[([^\]]+)\]\((https?:\/\/[^\s)]+)\))|(\[(\d{1,2})\])/g;
    var last = 0, m;
    while ((m = pattern.exec(text))) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      var node;
      if (m[1]) { node = document.createElement("strong"); node.textContent = m[2]; }
      else if (m[3]) { node = document.createElement("em"); node.textContent = m[4]; }
      else if (m[5]) { node = document.createElement("code"); node.textContent = m[6]; }
      else if (m[7]) { node = document.createElement("a"); node.textContent = m[8]; node.href = m[9]; node.target = "_blank"; node.rel = "noopener noreferrer nofollow"; }
      else {
        var cite = citationFor(citations, +m[11]);
        node = document.createElement(cite && cite.url ? "a" : "span");
        node.className = "cite";
        node.textContent = m[11];
        if (cite) {
          node.title = citationLabel(cite);
          if (cite.url && /^https?:/.test(cite.url)) { node.href = cite.url; node.target = "_blank"; node.rel = "noopener noreferrer"; }
        }
      }
      parent.appendChild(node);
      last = pattern.lastIndex;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }
  // A citation in words: "#i-lost-my-phone" reads "I lost my phone" (bots/chat/rendering.py).
  function citationLabel(c) {
    var where = c.location || "";
    if (where.charAt(0) === "#") {
      where = where.slice(1).replace(/[-_]/g, " ").trim();
      where = where.charAt(0).toUpperCase() + where.slice(1);
    }
    return (c.title || "Source") + (where ? " — " + where : "");
  }
  function citationFor(citations, n) {
    for (var i = 0; i < (citations || []).length; i++) if (citations[i].number === n) return citations[i];
    return null;
  }
  function markdown(text, citations) {
    var out = document.createDocumentFragment();
    text.split(/\n{2,}/).forEach(function (block) {
      var lines = block.split("\n");
      var bullet = lines.every(function (l) { return /^\s*[-*]\s+/.test(l); });
      var numbered = lines.every(function (l) { return /^\s*\d+[.)]\s+/.test(l); });
      if (block.trim() && (bullet || numbered)) {
        var list = document.createElement(bullet ? "ul" : "ol");
        lines.forEach(function (l) {
          var li = document.createElement("li");
          inline(li, l.replace(/^\s*([-*]|\d+[.)])\s+/, ""), citations);
          list.appendChild(li);
        });
        out.appendChild(list);
      } else if (block.trim()) {
        var p = document.createElement("p");
        lines.forEach(function (l, i) { if (i) p.appendChild(document.createElement("br")); inline(p, l, citations); });
        out.appendChild(p);
      }
    });
    return out;
  }

  // Transcript ---------------------------------------------------------------------
  var nodes = {}; // message id or client id -> element
  function find(id) { for (var i = 0; i < state.messages.length; i++) if (state.messages[i].id === id) return state.messages[i]; return null; }
  function render(message) {
    // Notices have neither id: each is its own element, never one to reuse.
    var ref = message.id || message.clientId;
    var el = ref ? nodes[message.id] || nodes[message.clientId] : null;
    if (!el) {
      el = document.createElement("div");
      log.insertBefore(el, typingNode.parentNode === log ? typingNode : null);
    }
    if (ref) nodes[ref] = el;
    el.className = "msg " + message.role;
    el.textContent = "";
    if (message.role === "bot" && message.status !== "pending" && message.status !== "streaming") {
      el.appendChild(markdown(message.text, message.citations));
      if (message.citations && message.citations.length) {
        var sources = document.createElement("div");
        sources.className = "sources";
        sources.textContent = t.sources;
        var ol = document.createElement("ol");
        message.citations.forEach(function (c) {
          var li = document.createElement("li");
          li.value = c.number;
          var label = citationLabel(c);
          if (c.url && /^https?:/.test(c.url)) { var a = document.createElement("a"); a.href = c.url; a.target = "_blank"; a.rel = "noopener noreferrer"; a.textContent = label; li.appendChild(a); }
          else li.textContent = label;
          ol.appendChild(li);
        });
        sources.appendChild(ol);
        el.appendChild(sources);
      }
      if (message.id && message.status === "done") el.appendChild(rating(message));
    } else if (message.role === "agent") {
      // A person, named and marked, so nobody mistakes them for the bot (or the reverse).
      var who = document.createElement("div");
      who.className = "who";
      var name = document.createElement("strong");
      name.textContent = message.author || t.agent;
      var tag = document.createElement("span");
      tag.className = "person";
      tag.textContent = t.person;
      who.appendChild(name); who.appendChild(tag);
      el.appendChild(who);
      el.appendChild(markdown(message.text || "", []));
    } else {
      el.textContent = message.text;
    }
    log.scrollTop = log.scrollHeight;
    return el;
  }
  function rating(message) {
    var box = document.createElement("div");
    box.className = "rate";
    var thumb = "M2 21h4V9H2v12zm20-11a2 2 0 0 0-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.4-1.1L13.2 1 6.6 7.6c-.4.4-.6.9-.6 1.4v10a2 2 0 0 0 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z";
    [[1, "", t.helpful], [-1, "transform:rotate(180deg)", t.unhelpful]].forEach(function (r) {
      var b = document.createElement("button");
      b.type = "button";
      var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("viewBox", "0 0 24 24");
      svg.setAttribute("aria-hidden", "true");
      svg.setAttribute("style", "width:14px;height:14px;fill:currentColor;" + r[1]);
      var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
      path.setAttribute("d", thumb);
      svg.appendChild(path);
      b.appendChild(svg);
      b.setAttribute("aria-label", r[2]);
      b.setAttribute("aria-pressed", String(message.rating === r[0]));
      b.onclick = function () {
        message.rating = r[0]; message.commented = false; save(); render(message);
        send({ type: "feedback", message_id: message.id, rating: r[0] });
        if (r[0] === -1) { var c = nodes[message.id] && nodes[message.id].querySelector(".comment textarea"); if (c) c.focus(); }
      };
      box.appendChild(b);
    });
    if (!message.rating) return box;
    var wrap = document.createDocumentFragment();
    wrap.appendChild(box);
    if (message.rating === -1 && !message.commented) wrap.appendChild(commentBox(message));
    var thanks = document.createElement("p");
    thanks.className = "thanks";
    thanks.setAttribute("role", "status");
    thanks.textContent = t.thanks;
    wrap.appendChild(thanks);
    return wrap;
  }
  // After a thumbs down, an optional word on what was wrong: a second `feedback` frame,
  // which replaces the first rating on the server.
  function commentBox(message) {
    var form = document.createElement("form");
    form.className = "comment";
    var id = "neo-comment-" + message.id;
    var label = document.createElement("label");
    label.htmlFor = id; label.textContent = t.commentLabel;
    var text = document.createElement("textarea");
    text.id = id; text.rows = 2; text.maxLength = 1000;
    var submit = document.createElement("button");
    submit.type = "submit"; submit.textContent = t.sendComment;
    form.appendChild(label); form.appendChild(text); form.appendChild(submit);
    form.addEventListener("submit", function (e) {
      e.preventDefault(); e.stopPropagation();
      var comment = text.value.trim().slice(0, 1000);
      if (!comment) { text.focus(); return; }
      message.commented = true; save(); render(message);
      send({ type: "feedback", message_id: message.id, rating: -1, comment: comment });
    });
    return form;
  }
  var typingNode = document.createElement("div");
  typingNode.className = "typing";
  typingNode.textContent = t.typing + "…";
  function typing(on) {
    if (on && typingNode.parentNode !== log) log.appendChild(typingNode);
    if (!on && typingNode.parentNode === log) log.removeChild(typingNode);
  }
  function redraw() {
    log.textContent = "";
    nodes = {};
    if (welcome.text) render({ id: "welcome", role: "bot", status: "welcome", text: welcome.text, citations: [] });
    state.messages.forEach(render);
    if (!state.messages.length && welcome.starters.length) {
      var box = document.createElement("div");
      box.className = "starters";
      welcome.starters.forEach(function (q) {
        var b = document.createElement("button");
        b.type = "button";
        b.textContent = q;
        b.onclick = function () { ask(q); };
        box.appendChild(b);
      });
      log.appendChild(box);
    }
  }
  var welcome = { text: "", starters: [] };
  function streaming() {
    var m = state.messages[state.messages.length - 1];
    return m && m.role === "bot" && (m.status === "pending" || m.status === "streaming") ? m : null;
  }
  function updateComposer() { sendButton.textContent = streaming() ? t.stop : t.send; }

  // Connection ---------------------------------------------------------------------
  // A websocket, or (after three failures to open one) the HTTP fallback: frames by
  // POST and events as Server-Sent Events.
  var socket = null, connected = false, attempts = 0, timer = null, fatal = false, traits = null;
  var everOpened = false, httpMode = !window.WebSocket, source = null;
  function wsUrl() { return base.replace(/^http/, "ws") + "/ws/chat/?key=" + encodeURIComponent(key); }
  function hello() {
    var frame = { type: "hello", v: PROTOCOL, visitor_token: state.token, last_event_id: state.lastEventId, page: location.href.slice(0, 2000), locale: cfg.language };
    if (cfg.testChat) frame.test = true; // honoured only on the server's own pages (the dashboard)
    return frame;
  }
  function post(frame) {
    var headers = { "Content-Type": "application/json" };
    if (state.token && frame.type !== "hello") headers["X-Visitor-Token"] = state.token;
    return fetch(base + "/chat/" + encodeURIComponent(key) + "/frames", { method: "POST", headers: headers, body: JSON.stringify(frame) })
      .then(function (r) {
        if (r.status === 403 || r.status === 404) { fatal = true; showBar(t.refused); return []; }
        return r.json();
      })
      .then(function (events) { (Array.isArray(events) ? events : [events]).forEach(handle); listen(); }, retry);
  }
  function listen() {
    if (!httpMode || source || !state.token || !state.conversationId) return;
    source = new EventSource(base + "/chat/" + encodeURIComponent(key) + "/events?token=" + encodeURIComponent(state.token) + "&last_event_id=" + encodeURIComponent(state.lastEventId || "0-0"));
    source.onmessage = function (e) { try { handle(JSON.parse(e.data)); } catch (x) { /* ignore */ } };
  }
  function connect() {
    if (fatal) return;
    if (httpMode) { if (!connected) post(hello()); return; }
    if (socket && socket.readyState <= 1) return;
    clearTimeout(timer);
    try { socket = new WebSocket(wsUrl()); } catch (e) { return retry(); }
    socket.onopen = function () { everOpened = true; socket.send(JSON.stringify(hello())); };
    socket.onmessage = function (e) { var event; try { event = JSON.parse(e.data); } catch (x) { return; } handle(event); };
    socket.onclose = function (e) {
      connected = false;
      if (e.code === 4400 || e.code === 4403 || e.code === 4404) { fatal = true; showBar(t.refused); emit("error", { code: e.code }); return; }
      retry();
    };
  }
  function retry() {
    connected = false;
    if (!everOpened && attempts >= 2 && !httpMode) { httpMode = true; attempts = 0; return connect(); }
    showBar(t.offline);
    var delay = Math.min(30000, 1000 * Math.pow(2, attempts++)) * (0.7 + Math.random() * 0.6);
    clearTimeout(timer);
    timer = setTimeout(connect, delay);
  }
  function reconnectNow() { if (!connected && !fatal) { attempts = 0; if (socket && socket.readyState === 0) return; connect(); } }
  window.addEventListener("online", reconnectNow);
  // Offline, the socket is as good as dead; close it now and resume when back.
  window.addEventListener("offline", function () { connected = false; if (socket) socket.close(); if (source) { source.close(); source = null; } });
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "visible") reconnectNow(); });
  window.addEventListener("focus", reconnectNow);
  // Frames sent while offline are dropped: unacknowledged questions are resent after
  // the next welcome (the server keeps one copy per client id).
  function send(frame) {
    if (httpMode && connected) post(frame);
    else if (connected && socket && socket.readyState === 1) socket.send(JSON.stringify(frame));
    else connect();
  }
  function showBar(text) { bar.textContent = text; bar.hidden = !text; }

  function handle(event) {
    if (event.id) state.lastEventId = event.id;
    switch (event.type) {
      case "welcome":
        connected = true; attempts = 0; showBar("");
        state.token = event.visitor_token;
        state.conversationId = event.conversation_id;
        welcome = { text: event.bot.welcome_message || "", starters: event.bot.starter_questions || [] };
        learnBot(event.bot);
        state.conversationStatus = event.conversation_status || null;
        if (!event.resumed) {
          var pending = state.messages.filter(function (m) { return m.role === "visitor" && !m.id; });
          var earlier = {};
          state.messages.forEach(function (m) { if (m.id) earlier[m.id] = m; });
          state.messages = event.history.map(function (m) {
            var kept = earlier[m.id] || {}; // this browser's own ratings
            return { id: m.id, role: m.role, text: m.text, status: m.status, citations: m.citations, seq: m.seq || 0, author: m.author, rating: kept.rating, commented: kept.commented };
          }).concat(pending);
          state.lastEventId = event.last_event_id;
        }
        save(); redraw(); updateComposer(); updateHandoff();
        typing(!!streaming());
        if (traits) send(traits);
        resendPending();
        emit("ready", { conversationId: event.conversation_id });
        break;
      case "ack":
        unavailableShown = false;
        if (event.visitor_token) state.token = event.visitor_token;
        state.conversationId = event.conversation_id;
        state.messages.forEach(function (m) { if (m.clientId === event.client_id) { m.id = event.message_id; nodes[m.id] = nodes[m.clientId]; } });
        // reply_id is null while a person holds the conversation: no bot reply is coming.
        if (event.reply_id != null && !find(event.reply_id)) state.messages.push({ id: event.reply_id, role: "bot", text: "", status: "pending", citations: [], seq: 0 });
        save(); typing(event.reply_id != null); updateComposer();
        break;
      case "visitor_message":
        if (!find(event.message.id)) { state.messages.push({ id: event.message.id, role: "visitor", text: event.message.text, status: "done" }); render(state.messages[state.messages.length - 1]); save(); }
        break;
      case "delta":
        var m = find(event.message_id);
        if (!m) { m = { id: event.message_id, role: "bot", text: "", status: "streaming", citations: [], seq: 0 }; state.messages.push(m); }
        if (event.seq !== (m.seq || 0)) break; // already shown
        m.seq = event.seq + 1; m.text += event.text; m.status = "streaming";
        typing(false); render(m); unread(); save(); updateComposer();
        break;
      case "reset":
        var r = find(event.message_id);
        if (r) { r.text = ""; r.seq = 0; render(r); save(); }
        break;
      case "done":
        var d = find(event.message_id);
        if (!d) { d = { id: event.message_id, role: "bot" }; state.messages.push(d); }
        d.text = event.text; d.status = event.status; d.citations = event.citations || []; d.seq = 0;
        typing(false); render(d); unread(); save(); updateComposer();
        emit("reply", { id: d.id, text: d.text, citations: d.citations });
        break;
      case "agent_message":
        var said = event.message || { text: event.text };
        if (said.id && find(said.id)) break;
        state.messages.push({ id: said.id, role: "agent", text: said.text, author: said.author, status: "done" });
        if (state.conversationStatus !== "agent") { state.conversationStatus = "agent"; updateHandoff(); }
        render(state.messages[state.messages.length - 1]); unread(); save();
        break;
      case "status":
        if (event.status === "bot_typing") typing(true);
        if (event.status === "bot_idle") typing(false);
        // Published changes carry an id and are told once; an answer to this client alone
        // (asking again for a person) only sets the state.
        var told = !!event.id;
        if (event.status === "handed_off") { state.conversationStatus = "pending_agent"; if (told) notice(t.handedOff); }
        if (event.status === "agent_joined") {
          state.conversationStatus = "agent";
          if (told) notice(event.agent ? t.agentJoined.replace("{name}", event.agent) : t.someoneJoined);
        }
        if (event.status === "returned_to_bot") { state.conversationStatus = "bot"; if (told) notice(t.backToBot); }
        updateHandoff(); save();
        break;
      case "error":
        emit("error", event);
        if (event.code === "token_invalid" || event.code === "token_expired") { state = fresh(state.bot); save(); updateHandoff(); break; }
        var note = { role: "system", text: event.message || t.error, status: "done" };
        if (event.code === "unavailable") {
          // A service is restarting; nothing was stored. Keep the question and send it again.
          clearTimeout(resendTimer);
          resendTimer = setTimeout(resendPending, 1000 * ((event.details && event.details.retry_after) || 3));
          if (!unavailableShown) { unavailableShown = true; render(note); }
          break;
        }
        if (event.details && event.details.client_id) {
          state.messages = state.messages.filter(function (x) { return x.clientId !== event.details.client_id || x.id; });
          redraw();
        }
        render(note);
        break;
    }
  }
  function notice(text) { state.messages.push({ role: "system", text: text, status: "done" }); render(state.messages[state.messages.length - 1]); unread(); }
  // "Talk to a person" is offered only while the bot holds the chat.
  function updateHandoff() { humanButton.hidden = state.conversationStatus === "pending_agent" || state.conversationStatus === "agent"; }
  var resendTimer = null, unavailableShown = false;
  // Questions the server has not acknowledged yet (the server keeps one copy per client id).
  function resendPending() {
    state.messages.forEach(function (m) { if (m.role === "visitor" && !m.id) send({ type: "message", client_id: m.clientId, text: m.text }); });
  }
  function unread() {
    if (!panel.hidden) return;
    badge.hidden = false;
    badge.textContent = String(Math.min(99, (parseInt(badge.textContent, 10) || 0) + (state.messages.length ? 1 : 0)));
  }

  // Actions ------------------------------------------------------------------------
  var counter = 0;
  function ask(text) {
    text = (text || "").trim();
    if (!text) return;
    var clientId = "c" + Date.now().toString(36) + (counter++).toString(36) + Math.random().toString(36).slice(2, 6);
    var message = { clientId: clientId, role: "visitor", text: text, status: "sending" };
    state.messages.push(message);
    save();
    var starters = log.querySelector(".starters");
    if (starters) starters.remove();
    render(message);
    send({ type: "message", client_id: clientId, text: text });
    emit("message", { text: text });
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var busy = streaming();
    if (busy) { send({ type: "stop", message_id: busy.id }); return; }
    ask(input.value);
    input.value = "";
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit")); }
  });
  humanButton.addEventListener("click", function () { send({ type: "handoff_request" }); });

  // The contact form: a ticket answered by email, for when no person is around to chat.
  emailButton.addEventListener("click", function () {
    if (log.querySelector(".contact")) { log.querySelector(".contact input").focus(); return; }
    var box = document.createElement("form"); box.className = "contact";
    var email = document.createElement("input"); email.type = "email"; email.required = true; email.placeholder = t.yourEmail; email.setAttribute("aria-label", t.yourEmail);
    var text = document.createElement("textarea"); text.rows = 3; text.required = true; text.maxLength = 4000; text.placeholder = t.yourMessage; text.setAttribute("aria-label", t.yourMessage);
    var problem = document.createElement("p"); problem.className = "err"; problem.setAttribute("role", "alert");
    var submit = document.createElement("button"); submit.type = "submit"; submit.textContent = t.sendEmail;
    box.appendChild(email); box.appendChild(text); box.appendChild(problem); box.appendChild(submit);
    box.addEventListener("submit", function (e) {
      e.preventDefault(); submit.disabled = true; problem.textContent = "";
      fetch(base + "/chat/" + encodeURIComponent(key) + "/contact", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email: email.value, text: text.value, subject: text.value.slice(0, 80) }) })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          if (!res.ok) { problem.textContent = res.body.message || t.error; submit.disabled = false; return; }
          box.remove();
          state.messages.push({ role: "system", text: t.contactDone + res.body.ticket, status: "done" });
          render(state.messages[state.messages.length - 1]); save();
        }).catch(function () { problem.textContent = t.error; submit.disabled = false; });
    });
    log.appendChild(box); log.scrollTop = log.scrollHeight; email.focus();
  });
  $(".x").addEventListener("click", function () { close(); });
  $(".new").addEventListener("click", function () { newChat(); });
  launcher.addEventListener("click", function () { panel.hidden ? open() : close(); });
  root.addEventListener("keydown", function (e) { if (e.key === "Escape" && !panel.hidden) { e.stopPropagation(); close(); } });

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    badge.hidden = true; badge.textContent = "";
    connect();
    input.focus();
    emit("open");
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
    emit("close");
  }
  function newChat() {
    state = fresh(state.bot);
    save(); updateHandoff();
    if (socket) { socket.onclose = null; socket.close(1000); socket = null; }
    if (source) { source.close(); source = null; }
    connected = false;
    redraw();
    connect();
  }

  window.NeoSupport = {
    version: PROTOCOL,
    open: open,
    close: close,
    toggle: function () { panel.hidden ? open() : close(); },
    newChat: newChat,
    identify: function (who) {
      who = who || {};
      traits = { type: "identify" };
      if (who.name) traits.name = String(who.name).slice(0, 200);
      if (who.email) traits.email = String(who.email).slice(0, 254);
      if (who.id) traits.external_id = String(who.id).slice(0, 200);
      if (connected) send(traits);
    },
    on: function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); },
    off: function (name, fn) { listeners[name] = (listeners[name] || []).filter(function (f) { return f !== fn; }); }
  };

  function mount() {
    applyTheme(); updateHandoff();
    if (!state.bot) { launcher.style.visibility = "hidden"; setTimeout(reveal, 1500); }
    document.body.appendChild(host);
    redraw();
    if (state.token) connect(); // a returning visitor hears replies and agents at once; others on open
    else if (!state.bot || cfg.testChat || Date.now() - (state.bot.at || 0) > THEME_REFRESH_MS) refreshTheme();
    if (data.open === "true") open();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
