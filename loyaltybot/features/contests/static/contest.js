// Public contest page / OBS overlay: refresh it in place from the JSON API every second.
// Text goes in with textContent only, so a question or an option can never become markup.
"use strict";
(() => {
  const board = document.querySelector(".contest-board[data-api]");
  if (!board) return;
  const seconds = Math.max(1, Number(board.dataset.refresh) || 1);
  const format = new Intl.NumberFormat("en-US");
  const $ = (selector) => board.querySelector(selector);

  function stateText(c) {
    switch (c.state) {
      case "none": return "No contest yet.";
      case "open": return "Open: type !bet <option> <amount> in chat.";
      case "closed": return "Bets are closed: the winner comes next.";
      case "settled": return `Option ${c.winner} won!`;
      case "refunded": return `Option ${c.winner} won; nobody had bet on it, so every bet was refunded.`;
      default: return "Canceled: every bet was refunded.";
    }
  }

  function option(o, pool) {
    const li = document.createElement("li");
    if (o.won) li.className = "won";
    for (const [cls, text] of [["rank", o.number], ["name", o.text], ["ct-ratio", o.ratio],
                               ["pts", format.format(o.pool)]]) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = String(text);
      li.append(span);
    }
    const meter = document.createElement("meter");
    meter.className = "ct-share";
    meter.min = 0;
    meter.max = 1;
    meter.value = pool ? o.pool / pool : 0;
    meter.setAttribute("aria-label", `${o.text}: share of the pool`);
    li.append(meter);
    return li;
  }

  function show(c) {
    $(".ct-title").textContent = c.id === null ? "Contest" : `Contest #${c.id}`;
    $(".ct-question").textContent = c.question || "";
    $(".ct-state").textContent = stateText(c);
    $(".ct-counts").hidden = c.id === null;
    $(".ct-pool").textContent = format.format(c.pool || 0);
    $(".ct-bettors").textContent = format.format(c.bettors || 0);
    $(".ct-options").replaceChildren(...(c.options || []).map((o) => option(o, c.pool)));
  }

  async function refresh() {
    try {
      const response = await fetch(board.dataset.api, { cache: "no-store" });
      if (response.ok) show(await response.json());
    } catch {
      // Keep showing the last good state; try again next time.
    }
  }
  setInterval(refresh, seconds * 1000);
})();
