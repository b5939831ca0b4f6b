// Public leaderboard / OBS overlay: refresh the list in place from the JSON API.
// Text goes in with textContent only, so a login can never become markup.
"use strict";
(() => {
  const board = document.querySelector(".board[data-api]");
  if (!board) return;
  const list = board.querySelector(".board-list");
  const empty = board.querySelector(".board-empty");
  const seconds = Math.max(2, Number(board.dataset.refresh) || 15);
  const format = new Intl.NumberFormat("en-US");

  function row(entry) {
    const li = document.createElement("li");
    if (entry.rank <= 3) li.className = `podium podium-${entry.rank}`;
    for (const [cls, text] of [["rank", entry.rank], ["name", entry.username], ["pts", format.format(entry.points)]]) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = String(text);
      li.append(span);
    }
    return li;
  }

  async function refresh() {
    try {
      const response = await fetch(board.dataset.api, { cache: "no-store" });
      if (!response.ok) return;
      const entries = await response.json();
      list.replaceChildren(...entries.map(row));
      empty.hidden = entries.length > 0;
    } catch {
      // Keep showing the last good list; try again next time.
    }
  }
  setInterval(refresh, seconds * 1000);
})();
