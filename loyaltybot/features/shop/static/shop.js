// Public shop page / OBS overlay: refresh the items and the latest purchases in place
// from the JSON API every few seconds. Text goes in with textContent only.
"use strict";
(() => {
  const board = document.querySelector(".shop[data-api]");
  if (!board) return;
  const list = board.querySelector(".shop-items");
  const empty = board.querySelector(".shop-empty");
  const recent = board.querySelector(".shop-recent");
  const seconds = Math.max(1, Number(board.dataset.refresh) || 2);
  const format = new Intl.NumberFormat("en-US");

  function span(cls, text) {
    const node = document.createElement("span");
    node.className = cls;
    node.textContent = String(text);
    return node;
  }

  function item(entry) {
    const li = document.createElement("li");
    if (entry.stock_left === 0) li.className = "sold-out";
    li.append(span("name", entry.name), span("pts", format.format(entry.cost)));
    if (entry.stock_left !== null) {
      li.append(span("stock", entry.stock_left === 0 ? "sold out" : `${format.format(entry.stock_left)} left`));
    }
    if (entry.description) li.append(span("desc", entry.description));
    return li;
  }

  function purchase(entry) {
    const li = document.createElement("li");
    li.textContent = `${entry.user_name} bought ${entry.item}`;
    return li;
  }

  async function refresh() {
    try {
      const response = await fetch(board.dataset.api, { cache: "no-store" });
      if (!response.ok) return;
      const body = await response.json();
      list.replaceChildren(...body.items.map(item));
      empty.hidden = body.items.length > 0;
      if (recent) recent.replaceChildren(...body.recent.map(purchase));
    } catch {
      // Keep showing the last good state; try again next time.
    }
  }
  setInterval(refresh, seconds * 1000);
})();
