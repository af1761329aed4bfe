/**
 * Happy Server's Socket.IO endpoint, where the Happy app listens for its user's updates: path
 * `/v1/updates`, the token in the handshake's `auth.token` (or `?token=`), and for a
 * `user-scoped` client (the default) an `update` event after each of its user's mutates, as the
 * original emits them. Other client types connect and receive no kv updates (the original sends
 * those only to user-scoped connections).
 */
import { Server } from "socket.io";
import type { Subscription } from "../../engine/database.js";
import { KvError } from "../../kv-error.js";
import type { AttachContext, HttpServer, Principal } from "../face.js";
import { followUpdates } from "./happy-store.js";

export const SOCKET_PATH = "/v1/updates";

export function attachUpdates(server: HttpServer, context: AttachContext): () => Promise<void> {
  const io = new Server(server as never, {
    path: SOCKET_PATH,
    serveClient: false,
    cors: { origin: "*", methods: ["GET", "POST", "OPTIONS"] },
  });
  io.use((socket, next) => {
    const { auth, query } = socket.handshake;
    const token = auth?.token ?? query?.token;
    Promise.resolve()
      .then(() => context.tokens.authenticate(`Bearer ${typeof token === "string" ? token : ""}`))
      .then((principal) => {
        socket.data.principal = principal;
        next();
      })
      .catch((error) =>
        next(new Error(error instanceof KvError ? error.message : "Invalid token")),
      );
  });
  io.on("connection", (socket) => {
    const { auth, query } = socket.handshake;
    const clientType = auth?.clientType ?? query?.clientType ?? "user-scoped";
    if (clientType !== "user-scoped") return;
    let subscription: Subscription | undefined;
    const fail = (error: unknown) => {
      socket.emit("error", { message: error instanceof Error ? error.message : String(error) });
      socket.disconnect(true);
    };
    try {
      const principal = socket.data.principal as Principal;
      subscription = followUpdates(context.database(principal), { uid: principal.name }, null, {
        update: (update) => socket.emit("update", update),
        error: fail,
      });
    } catch (error) {
      fail(error); // e.g. FORBIDDEN: no grant on the user's keys
      return;
    }
    socket.on("disconnect", () => subscription?.close());
  });
  return () => new Promise<void>((resolve) => io.close(() => resolve()));
}
