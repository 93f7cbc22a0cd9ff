// Completions under the query box: the field names and values seen recently,
// inserted at the caret; arrow keys move, Enter or Tab accepts, Escape closes.

import { fill, h, show } from './dom.js';

/** Wire `query` (the input) to `suggestions` (its listbox) from `recent` (RecentValues). */
export function attachSuggestions(query, suggestions, recent) {
  let active = -1;

  function currentWord() {
    const upto = query.value.slice(0, query.selectionStart ?? query.value.length);
    const m = upto.match(/(\S+?:"[^"]*|\S*)$/);
    return { word: m ? m[0] : '', start: upto.length - (m ? m[0].length : 0) };
  }

  function updateSuggestions() {
    const { word } = currentWord();
    const items = recent.suggest(word);
    active = -1;
    if (!word || !items.length) return closeSuggestions();
    fill(
      suggestions,
      ...items.map((item, i) => {
        const li = h('li', { role: 'option', id: `suggestion-${i}`, 'aria-selected': 'false' }, item.label);
        li.addEventListener('mousedown', (e) => {
          e.preventDefault();
          accept(item);
        });
        li._item = item;
        return li;
      }),
    );
    show(suggestions, true);
    query.setAttribute('aria-expanded', 'true');
  }

  function closeSuggestions() {
    show(suggestions, false);
    query.setAttribute('aria-expanded', 'false');
    query.removeAttribute('aria-activedescendant');
    active = -1;
  }

  function accept(item) {
    const { start } = currentWord();
    const end = query.selectionStart ?? query.value.length;
    query.value = query.value.slice(0, start) + item.insert + query.value.slice(end);
    const caret = start + item.insert.length;
    query.setSelectionRange(caret, caret);
    query.focus();
    if (item.field) updateSuggestions();
    else closeSuggestions();
  }

  function highlight(index) {
    const items = [...suggestions.children];
    if (!items.length) return;
    active = (index + items.length) % items.length;
    items.forEach((li, i) => li.setAttribute('aria-selected', String(i === active)));
    query.setAttribute('aria-activedescendant', items[active].id);
  }

  query.addEventListener('input', updateSuggestions);
  query.addEventListener('focus', updateSuggestions);
  query.addEventListener('blur', () => setTimeout(closeSuggestions, 100));
  query.addEventListener('keydown', (e) => {
    const open = !suggestions.hidden;
    if (e.key === 'ArrowDown' && open) {
      e.preventDefault();
      highlight(active + 1);
    } else if (e.key === 'ArrowUp' && open) {
      e.preventDefault();
      highlight(active - 1);
    } else if ((e.key === 'Enter' || e.key === 'Tab') && open && active >= 0) {
      e.preventDefault();
      accept(suggestions.children[active]._item);
    } else if (e.key === 'Escape' && open) {
      e.preventDefault();
      closeSuggestions();
    }
  });

  return { close: closeSuggestions };
}
