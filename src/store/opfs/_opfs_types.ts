// Copyright 2026 the @ckpt/monitor authors. MIT license.
/**
 * The parts of the browser's File System (OPFS) and Web Locks APIs the OPFS
 * store uses, typed here because Deno's type library has neither.
 *
 * @module
 */

/** `FileSystemSyncAccessHandle` (dedicated Workers only). */
export interface SyncAccessHandle {
  write(buffer: Uint8Array, options: { at: number }): number;
  read(buffer: Uint8Array, options: { at: number }): number;
  getSize(): number;
  flush(): void;
  close(): void;
}

/** `FileSystemWritableFileStream`. */
export interface WritableFile {
  write(data: Uint8Array): Promise<void>;
  close(): Promise<void>;
  abort(reason?: unknown): Promise<void>;
}

/** `FileSystemFileHandle`. */
export interface FileHandle {
  readonly kind: "file";
  readonly name: string;
  getFile(): Promise<File>;
  createWritable(options?: { keepExistingData?: boolean }): Promise<
    WritableFile
  >;
  createSyncAccessHandle?(): Promise<SyncAccessHandle>;
  move?(parent: DirectoryHandle, name: string): Promise<void>;
}

/** `FileSystemDirectoryHandle`. */
export interface DirectoryHandle {
  readonly kind: "directory";
  readonly name: string;
  getDirectoryHandle(
    name: string,
    options?: { create?: boolean },
  ): Promise<DirectoryHandle>;
  getFileHandle(
    name: string,
    options?: { create?: boolean },
  ): Promise<FileHandle>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
  entries(): AsyncIterableIterator<[string, FileHandle | DirectoryHandle]>;
}

/** `LockManager` (`navigator.locks`). */
export interface LockManager {
  request<T>(
    name: string,
    options: { mode?: "exclusive" | "shared"; ifAvailable?: boolean },
    callback: (lock: unknown) => Promise<T> | T,
  ): Promise<T>;
}

/** `StorageManager` (`navigator.storage`). */
export interface StorageManagerLike {
  getDirectory?(): Promise<DirectoryHandle>;
  estimate?(): Promise<{ usage?: number; quota?: number }>;
  persist?(): Promise<boolean>;
  persisted?(): Promise<boolean>;
}

/** The `navigator` of a page or Worker, as far as the store needs it. */
export function browserNavigator(): {
  storage?: StorageManagerLike;
  locks?: LockManager;
} {
  return (globalThis as { navigator?: object }).navigator ?? {};
}
