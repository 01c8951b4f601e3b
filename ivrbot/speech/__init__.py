"""Speech: text-to-speech (pyttsx3 / espeak-ng) and recognition (vosk) with their models."""
