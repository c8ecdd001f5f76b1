// node:http's helper module: shipped with Node and importable, but without type declarations.
declare module '_http_common' {
  /** Returns a connection's HTTP parser to node:http's pool and unlinks it from the socket. */
  export function freeParser(parser: object | null, req: object | null, socket: object | null): void;
}
