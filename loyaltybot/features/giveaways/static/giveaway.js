// Public giveaway page / OBS overlay: refresh it in place from the JSON API every second.
// Text goes in with textContent only, so a login or a prize can never become markup.
"use strict";
(() => {
  const board = document.querySelector(".giveaway-board[data-api]");
  if (!board) return;
  const seconds = Math.max(1, Number(board.dataset.refresh) || 1);
  const format = new Intl.NumberFormat("en-US");
  const $ = (selector) => board.querySelector(selector);

  function stateText(g) {
    switch (g.state) {
      case "none": return "No giveaway yet.";
      case "open": return `Open: type ${g.ticket_cost === 0 ? "!join" : "!ticket"} in chat to enter.`;
      case "closed": return "Closed: the draw comes next.";
      case "drawn": case "ended": return "Drawn.";
      default: return "Canceled: every ticket was refunded.";
    }
  }

  function show(g) {
    $(".gw-title").textContent = g.id === null ? "Giveaway" : `Giveaway #${g.id}`;
    $(".gw-prize").textContent = g.prize || "";
    $(".gw-state").textContent = stateText(g);
    $(".gw-counts").hidden = g.id === null;
    $(".gw-tickets").textContent = format.format(g.tickets || 0);
    $(".gw-entrants").textContent = format.format(g.entrants || 0);
    const winners = g.winners || [];
    $(".gw-winners-title").hidden = winners.length === 0;
    $(".gw-winners").replaceChildren(...winners.map((w, i) => {
      const li = document.createElement("li");
      for (const [cls, text] of [["rank", i + 1], ["name", w.username]]) {
        const span = document.createElement("span");
        span.className = cls;
        span.textContent = String(text);
        li.append(span);
      }
      return li;
    }));
    const proof = $(".gw-proof");
    proof.replaceChildren();
    const hash = g.seed || g.commitment;
    if (hash) {
      const code = document.createElement("code");
      code.textContent = hash;
      proof.append(g.seed ? "Seed " : "Seed SHA-256 ", code);
    }
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
