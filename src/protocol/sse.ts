/**
 * Server-sent events (the WHATWG `text/event-stream` format): `event:`, `id:` and `data:` fields,
 * one event per blank-line-terminated block. Cairn's streams put a versionstamp in `id:`, so a
 * client that reconnects with `Last-Event-ID` resumes where it stopped.
 */

export interface SseEvent {
  readonly event: string;
  readonly data: string;
  readonly id?: string;
}

/** One event as text; multi-line data becomes several `data:` lines. */
export function formatSse(e: SseEvent): string {
  const id = e.id === undefined ? "" : `id: ${e.id}\n`;
  return `event: ${e.event}\n${id}data: ${e.data.replace(/\n/g, "\ndata: ")}\n\n`;
}

/** Turns a stream of text chunks into events; `data` lines are joined with newlines. */
export class SseParser {
  #buffer = "";

  /** The events completed by `chunk`. */
  push(chunk: string): SseEvent[] {
    this.#buffer += chunk.replace(/\r\n?/g, "\n");
    const events: SseEvent[] = [];
    let end = this.#buffer.indexOf("\n\n");
    while (end !== -1) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      let event = "message";
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line === "" || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "id") id = value;
        else if (field === "data") data.push(value);
      }
      if (data.length > 0 || event !== "message") {
        events.push({ event, data: data.join("\n"), ...(id !== undefined && { id }) });
      }
      end = this.#buffer.indexOf("\n\n");
    }
    return events;
  }
}
