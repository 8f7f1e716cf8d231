// An error shown to the user: the message, readable, announced by screen readers (role="alert"). Its text is the
// message alone (the dismiss button has a label, not text), so tests and people read the same thing.
import type { AppError } from "../ipc/types";
import { Icon } from "./Icon";

export function ErrorBanner({ error, onDismiss }: { error: AppError | null; onDismiss?: () => void }) {
  if (!error) return null;
  return (
    <div class="banner banner-error" role="alert" data-testid="error-banner" data-code={error.code}>
      <Icon name="alert" />
      <span class="banner-text">{error.message}</span>
      {onDismiss && (
        <button type="button" class="icon-button" aria-label="Dismiss" title="Dismiss" onClick={onDismiss}>
          <Icon name="close" />
        </button>
      )}
    </div>
  );
}
